/**
 * @module zod schemas of the GPU proof's messages (docs/gpu-proof.md §9): device records,
 * u64 seeds as decimal strings, profiles, proofs, and the payload of each GPU-agent op.
 * Shared by the API routes and services, the GPU agent and the tests, so every side
 * rejects the same bad input with the same located message.
 */
import { z } from "zod";
import { U64_MAX } from "../lib/bytes.ts";

const MAX_NAME_BYTES = 63;

/**
 * A GPU UUID: 32 hex digits. Accepts nvidia-smi's `GPU-xxxxxxxx-xxxx-…` spelling and
 * upper case, and normalises to the canonical 32 lower-case digits.
 */
export const gpuUuid = z
  .string()
  .transform((value) => value.replace(/^GPU-/i, "").replaceAll("-", "").toLowerCase())
  .pipe(z.string().regex(/^[0-9a-f]{32}$/, { message: "must be a GPU UUID: 32 hex digits (dashes and GPU- allowed)" }));

const u32 = z.number().int().min(0).max(0xffffffff);

/** The device record a miner reports for one GPU (upstream's field names and units). */
export const deviceRecordSchema = z.strictObject({
  name: z
    .string()
    .min(1)
    .refine((name) => new TextEncoder().encode(name).length <= MAX_NAME_BYTES, {
      message: `must be at most ${MAX_NAME_BYTES} bytes of UTF-8`,
    })
    .refine((name) => !name.includes("\u0000"), { message: "must not contain NUL" }),
  uuid: gpuUuid,
  /** Total device memory in bytes. */
  memory: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  major: u32,
  minor: u32,
  /** Streaming multiprocessors. */
  processors: u32.min(1),
  sxm: z.boolean(),
  /** Clock rate in kHz, a whole number. */
  clock_rate: u32.min(1),
  max_threads_per_processor: u32.min(1),
  concurrent_kernels: z.boolean(),
  ecc: z.boolean(),
});

export type DeviceRecord = z.output<typeof deviceRecordSchema>;

/** A u64 as a decimal string (JSON numbers lose precision past 2^53). Parses to bigint. */
export const seedSchema = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,19})$/, { message: "must be a decimal string of an unsigned 64-bit integer" })
  .transform((text) => BigInt(text))
  .refine((value) => value <= U64_MAX, { message: "must be at most 2^64 − 1 (18446744073709551615)" });

export const PROFILE_NAMES = ["tiny", "small", "full"] as const;
export const profileSchema = z.enum(PROFILE_NAMES);
export type ProfileName = z.infer<typeof profileSchema>;

/** 32 bytes as 64 lower-case hex digits. */
export const digestHex = z.string().regex(/^[0-9a-f]{64}$/, { message: "must be 64 lower-case hex digits" });

/** What pins a proof: the device, the seed and the profile (K is derived from them). */
export const proofParamsSchema = z.strictObject({
  device: deviceRecordSchema,
  seed: seedSchema,
  profile: profileSchema,
});
export type ProofParams = z.output<typeof proofParamsSchema>;

/** A proof: T × N commitments, iteration-major (`commitments[t·N + m]`). */
export const proofSchema = z.strictObject({
  commitments: z
    .array(digestHex)
    .min(1)
    .max(16 * 4096),
});

/** GPU-agent ops and their payloads. */
export const GPU_OPS = ["prove", "verify", "encrypt", "selftest"] as const;
export const gpuOpSchema = z.enum(GPU_OPS);
export type GpuOp = z.infer<typeof gpuOpSchema>;

export const opPayloadSchemas = {
  /** Run the whole proof (miners, the simulated miner, benchmarks). */
  prove: proofParamsSchema,
  /** Recompute the cone of `check_index` and compare it with the proof. */
  verify: proofParamsSchema.extend({
    commitments: proofSchema.shape.commitments,
    check_index: z.number().int().min(0),
  }),
  /** Encrypt `plaintext` under the key of a matrix the agent picks and keeps secret. */
  encrypt: proofParamsSchema.extend({
    plaintext: z.string().max(64 * 1024),
  }),
  /** Run the known-answer vectors. */
  selftest: z.strictObject({}),
} satisfies Record<GpuOp, z.ZodType>;

export type OpPayload<Op extends GpuOp> = z.output<(typeof opPayloadSchemas)[Op]>;

/** Results, as agents report them. */
export const opResultSchemas = {
  prove: z.strictObject({ commitments: z.array(digestHex), elapsed_ms: z.number().nonnegative() }),
  verify: z.strictObject({
    valid: z.boolean(),
    check_index: z.number().int().min(0),
    checked: z.number().int().min(0),
    /** The first commitment that differed, when one did. */
    mismatch: z.strictObject({ t: z.number().int(), m: z.number().int() }).optional(),
  }),
  encrypt: z.strictObject({ ciphertext: z.string().min(1) }),
  selftest: z.strictObject({ passed: z.boolean(), vectors: z.number().int().min(0) }),
} satisfies Record<GpuOp, z.ZodType>;

export type OpResult<Op extends GpuOp> = z.output<(typeof opResultSchemas)[Op]>;
