/**
 * @module zod schemas of the builder endpoints: registration (admin), claims, log batches
 * and results; and the builders' scheme of the service credential (the builder signs with it).
 */
import { z } from "zod";
import type { ServiceScheme } from "../lib/service-signatures.ts";
import { registerAgentSchema } from "./gpu-agents.ts";

/** Builders sign with label `chutes-edge-builder-v1` and `X-Builder-*` headers. */
export const BUILDER_SCHEME: ServiceScheme = {
  label: "chutes-edge-builder-v1",
  headers: {
    id: "x-builder-id",
    timestamp: "x-builder-timestamp",
    nonce: "x-builder-nonce",
    signature: "x-builder-signature",
  },
};

/** A builder registers like a GPU agent: a name and an Ed25519 public key. */
export const registerBuilderSchema = registerAgentSchema;

export const builderIdParam = z.strictObject({ builder_id: z.uuid() });
export const buildImageParam = z.strictObject({ image_id: z.uuid() });

/** Longest a claim may wait for a build (Workers and proxies keep a request this long). */
export const MAX_BUILD_CLAIM_WAIT_MS = 25_000;

export const buildClaimSchema = z.strictObject({
  wait_ms: z.number().int().min(0).max(MAX_BUILD_CLAIM_WAIT_MS).default(20_000),
});

/** Most lines in one batch (the builder sends at most this many per request). */
export const MAX_LOG_BATCH_LINES = 500;

export const logBatchSchema = z.strictObject({
  attempt: z.number().int().min(1),
  /** Sequence number (from 0 per attempt) of the first line of the batch. */
  seq: z.number().int().min(0),
  lines: z
    .array(z.strictObject({ log_type: z.enum(["stdout", "stderr"]), log: z.string().max(65_536) }))
    .min(1)
    .max(MAX_LOG_BATCH_LINES),
});

export const buildResultSchema = z.discriminatedUnion("status", [
  z.strictObject({ attempt: z.number().int().min(1), status: z.literal("built") }),
  z.strictObject({ attempt: z.number().int().min(1), status: z.literal("error"), error: z.string().min(1).max(4000) }),
]);
