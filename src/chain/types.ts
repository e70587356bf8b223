/**
 * @module The platform's only view of the chain (Bittensor subtensor): the `Chain`
 * interface and the plain data it returns. Nothing here imports a chain library, so the
 * request path can use these types without paying for one.
 *
 * Two implementations, chosen by `CHAIN_MODE`: `rpc` (src/chain/rpc.ts, a subtensor node
 * over JSON-RPC) and `file` (src/chain/file.ts, the dev chain that infra/dev serves).
 */

export type ChainMode = "rpc" | "file";

/** One neuron (uid) of a subnet, as the metagraph mirror needs it. */
export interface Neuron {
  netuid: number;
  uid: number;
  /** ss58 (prefix 42), as every Bittensor tool prints it. */
  hotkey: string;
  coldkey: string;
  active: boolean;
  /** Sum of the neuron's stake list, in rao (1 TAO = 1e9 rao; alpha units since dTAO). */
  stakeRao: bigint;
  /** u16 fixed-point values scaled to 0..1. */
  incentive: number;
  trust: number;
  validatorTrust: number;
  validatorPermit: boolean;
  /** Block of the neuron's last weight submission (0 when never). */
  lastUpdate: number;
  /** null when the neuron never served an axon (the chain's all-zero default). */
  axon: Axon | null;
}

export interface Axon {
  /** Dotted IPv4 or RFC 5952 IPv6; null when the chain holds 0. */
  ip: string | null;
  port: number;
  /** 4 or 6. */
  ipType: number;
  protocol: number;
  version: number;
  block: number;
}

export interface BlockRef {
  number: number;
  /** 0x-prefixed hex. */
  hash: string;
}

/** A `Balances.Transfer` event of a finalised block. */
export interface Transfer {
  blockNumber: number;
  blockHash: string;
  /** The extrinsic that emitted it; null for transfers made outside an extrinsic (hooks). */
  extrinsicIndex: number | null;
  /** Position of the event in the block's event list (unique within the block). */
  eventIndex: number;
  from: string;
  to: string;
  amountRao: bigint;
}

export interface BlockTransfers extends BlockRef {
  transfers: Transfer[];
}

/** What the weight setter needs to respect the chain's rate limit. */
export interface ValidatorState {
  netuid: number;
  hotkey: string;
  /** null when the validator hotkey is not registered on the subnet. */
  uid: number | null;
  /** Block of the validator's last weight submission; null when not registered. */
  lastUpdate: number | null;
  /** The chain's best block. */
  currentBlock: number;
  /** Blocks between two weight submissions (`WeightsSetRateLimit`); null when the chain does not say. */
  weightsRateLimit: number | null;
}

export interface WeightsRequest {
  netuid: number;
  uids: number[];
  /** u16 values, one per uid. */
  weights: number[];
  versionKey: number;
}

export interface WeightSubmission extends WeightsRequest {
  mode: ChainMode;
  hotkey: string;
  /** Hash of the submitted extrinsic (rpc); null when only recorded (file). */
  extrinsicHash: string | null;
  /** Best block when it was submitted or recorded. */
  block: number;
}

export interface Chain {
  readonly mode: ChainMode;
  /** The validator hotkey (ss58) that signs weights; null when no seed is configured. */
  readonly validatorHotkey: string | null;
  /** Every neuron of `netuid`, ordered by uid. */
  getNeurons(netuid: number): Promise<Neuron[]>;
  getFinalizedHead(): Promise<BlockRef>;
  /** Transfers in finalised block `blockNumber`; null when that block is not finalised yet. */
  getTransfers(blockNumber: number): Promise<BlockTransfers | null>;
  getValidatorState(netuid: number): Promise<ValidatorState>;
  /** Signs and submits `SubtensorModule.set_weights` (rpc) or records it (file). */
  setWeights(request: WeightsRequest): Promise<WeightSubmission>;
  /** Releases whatever the implementation holds. */
  close(): Promise<void>;
}

/** A chain failure the caller can log and retry later (bad answer, missing key, …). */
export class ChainError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ChainError";
  }
}
