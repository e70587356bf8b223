/**
 * @module zod schemas of the GPU-agent endpoints: agent registration (admin), job claims,
 * heartbeats and result callbacks.
 */
import { z } from "zod";
import { GPU_OPS, gpuOpSchema } from "./gpu-proof.ts";

export const registerAgentSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, { message: "must be 1–63 characters of a–z, 0–9, '.', '_' or '-'" }),
  /** Ed25519 public key: 32 bytes as 64 lower-case hex digits. */
  public_key: z
    .string()
    .transform((key) => key.toLowerCase())
    .pipe(z.string().regex(/^[0-9a-f]{64}$/, { message: "must be an Ed25519 public key: 64 hex digits" })),
});

export const agentIdParam = z.strictObject({ agent_id: z.uuid() });

/** Longest a claim may wait for a job (Workers and proxies keep a request this long). */
export const MAX_CLAIM_WAIT_MS = 25_000;

export const claimSchema = z.strictObject({
  /** The ops this agent runs (all by default). */
  ops: z
    .array(gpuOpSchema)
    .min(1)
    .default([...GPU_OPS]),
  /** Long-poll: wait up to this long for a job before answering 204. */
  wait_ms: z.number().int().min(0).max(MAX_CLAIM_WAIT_MS).default(20_000),
});

export const jobIdParam = z.strictObject({ job_id: z.uuid() });

export const timingsSchema = z.strictObject({
  queued_ms: z.number().nonnegative().optional(),
  gpu_ms: z.number().nonnegative(),
  total_ms: z.number().nonnegative(),
});

/** The signed callback an agent posts when a job ends (idempotent on job_id). */
export const jobResultSchema = z.strictObject({
  job_id: z.uuid(),
  op: gpuOpSchema,
  status: z.enum(["ok", "error"]),
  result: z.unknown().optional(),
  error: z.string().max(4000).optional(),
  timings: timingsSchema,
  agent_version: z.string().min(1).max(64),
  device: z.strictObject({ index: z.number().int().min(0), name: z.string().max(128) }).optional(),
});

export type JobResult = z.output<typeof jobResultSchema>;
