/**
 * @module The dev chain's wire format: the metagraph document developers edit
 * (infra/dev/metagraph.json, copied to `.data/` by `npm start`) and the JSON the dev
 * chain server (infra/dev/dev-chain.ts) answers with. Shared by that server and the
 * `file` chain so both validate the same shapes.
 */
import { z } from "zod";

const u16 = z.number().int().min(0).max(65_535);
const unit = z.number().min(0).max(1);
const blockNumber = z.number().int().min(0);
/** ss58: base58 of 35 bytes or so; the dev chain does not check the checksum. */
const ss58 = z.string().regex(/^[1-9A-HJ-NP-Za-km-z]{46,48}$/, { message: "must be an ss58 address" });

export const devAxonSchema = z.object({
  ip: z.string().min(1),
  port: u16,
  ip_type: z.union([z.literal(4), z.literal(6)]).default(4),
  protocol: z.number().int().min(0).max(255).default(4),
  version: z.number().int().min(0).default(0),
  block: blockNumber.default(0),
});

export const devNeuronSchema = z.object({
  uid: u16,
  hotkey: ss58,
  coldkey: ss58,
  active: z.boolean().default(true),
  /** In TAO (the chain counts rao). */
  stake: z.number().min(0).default(0),
  incentive: unit.default(0),
  trust: unit.default(0),
  validator_trust: unit.default(0),
  validator_permit: z.boolean().default(false),
  last_update: blockNumber.default(0),
  axon: devAxonSchema.nullable().default(null),
});

export const devMetagraphSchema = z.object({
  /** Blocks between two weight submissions, as `WeightsSetRateLimit` on chain. */
  weights_rate_limit: blockNumber.default(100),
  /** netuid → neurons. */
  subnets: z.record(z.string().regex(/^\d+$/), z.array(devNeuronSchema)).default({}),
});

export const devBlockSchema = z.object({ number: blockNumber, hash: z.string() });

export const devTransferSchema = z.object({
  from: ss58,
  to: ss58,
  /** Decimal string: rao exceed 2^53. */
  amount_rao: z.string().regex(/^\d+$/),
  extrinsic_index: z.number().int().min(0).nullable(),
  event_index: z.number().int().min(0),
});

export const devBlockTransfersSchema = devBlockSchema.extend({ transfers: z.array(devTransferSchema) });

export const devWeightsSchema = z.object({
  netuid: u16,
  hotkey: z.string(),
  uids: z.array(u16),
  weights: z.array(u16),
  version_key: z.number().int().min(0),
  block: blockNumber,
});

export type DevAxon = z.infer<typeof devAxonSchema>;
export type DevNeuron = z.infer<typeof devNeuronSchema>;
export type DevMetagraph = z.infer<typeof devMetagraphSchema>;
export type DevTransfer = z.infer<typeof devTransferSchema>;
export type DevBlockTransfers = z.infer<typeof devBlockTransfersSchema>;
export type DevWeights = z.infer<typeof devWeightsSchema>;
