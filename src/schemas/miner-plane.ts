/**
 * @module zod schemas of the miner plane's REST bodies and parameters: node registration
 * (`POST /nodes/`, upstream's NodeArgs), verification status, instance announce and
 * activate, and the messages exchanged with a miner's verification server and instances
 * (docs/protocols.md, "Nodes and verification", "Instance protocol").
 */
import { z } from "zod";
import { deviceRecordSchema, digestHex, gpuUuid, profileSchema } from "./gpu-proof.ts";

/** Upstream's limit (HEAD) on GPUs per `POST /nodes/`: one server's worth. */
export const MAX_NODES_PER_REQUEST = 10;

/** One GPU as the miner reports it: the device record plus where it is and what it is. */
export const nodeArgsSchema = deviceRecordSchema.extend({
  /** Index of the GPU on its server (upstream: `< 10`). */
  device_index: z.number().int().min(0).max(9),
  /** The supported-GPU key the name must identify (`GET /nodes/supported`). */
  gpu_identifier: z.string().min(1).max(32),
  /** The host of the miner's verification server: a public IP or DNS name. */
  verification_host: z.string().trim().min(1).max(253),
  verification_port: z.number().int().min(80).max(65_535),
});
export type NodeArgs = z.output<typeof nodeArgsSchema>;

export const registerNodesSchema = z.strictObject({
  nodes: z.array(nodeArgsSchema).min(1).max(MAX_NODES_PER_REQUEST),
  /** HEAD's optional server id; recorded nowhere, accepted for compatibility. */
  server_id: z.string().max(128).optional(),
});

export const verificationStatusQuery = z.strictObject({ task_id: z.string().min(1).max(256) });

export const nodeIdParam = z.strictObject({ node_id: gpuUuid });

export const announceInstanceSchema = z.strictObject({
  node_ids: z.array(gpuUuid).min(1).max(MAX_NODES_PER_REQUEST),
  host: z.string().trim().min(1).max(253),
  port: z.number().int().min(80).max(65_535),
});

export const activateInstanceSchema = z.strictObject({ active: z.literal(true) });

export const chuteIdParam = z.strictObject({ chute_id: z.string().min(1).max(64) });
export const instanceParams = z.strictObject({ chute_id: z.string().min(1).max(64), instance_id: z.uuid() });

/** `?explicit_null=true` on the `/miner/*` lists: an empty list sends `data: NO_ITEMS`. */
export const minerListQuery = z.object({
  explicit_null: z
    .enum(["True", "False", "true", "false", "1", "0"])
    .optional()
    .transform((value) => value === "True" || value === "true" || value === "1"),
});

/** Validator → verification server: the node challenge (docs/gpu-proof.md §9, step 2). */
export const proofChallengeSchema = z.strictObject({
  seed: z.string(),
  profile: profileSchema,
  ciphertexts: z.record(z.string(), z.string()),
});

/** What an instance unwraps its session key from (`POST /_exchange` `wrapped_key`). */
export const wrappedKeySchema = z.strictObject({
  /** The GPU (node uuid) whose proof opens it. */
  uuid: gpuUuid,
  seed: z.string(),
  profile: profileSchema,
  /** The session key as 64 hex digits, sealed under that GPU's proof key (docs/gpu-proof.md §7). */
  ciphertext: z.string(),
});
export type WrappedKey = z.output<typeof wrappedKeySchema>;

export const pingReplySchema = z.object({ mac: digestHex });
