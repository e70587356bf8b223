/**
 * @module Node verification with the open GPU proof, for the miner plane
 * (docs/gpu-proof.md §9). The flow, for one server's GPUs:
 *
 * 1. `startNodeProof` picks a fresh u64 seed and, per GPU, a random plaintext, and queues
 *    an `encrypt` job per GPU (the validator's agent seals the plaintext under the key of
 *    a matrix index it picks and keeps secret).
 * 2. `challengeCiphertexts` waits for those jobs; the caller sends
 *    `{seed, profile, ciphertexts}` to the miner and records when it did.
 * 3. The miner proves on every GPU, decrypts, and answers `{uuid: {plaintext, commitments}}`.
 * 4. `judgeProofResponse` (no GPU) refuses a wrong plaintext, a proof of the wrong shape,
 *    or an answer outside the GPU model's time window; `startProofChecks` then queues a
 *    `verify` job per GPU at a random index, and `proofVerdict` collects them.
 */
import { z } from "zod";
import { shapeFor, timeWindow, timingVerdict } from "../gpu-proof/profiles.ts";
import { checkProofShape, ProofShapeError, randomIndex, randomSeed } from "../gpu-proof/protocol.ts";
import { ApiError } from "../lib/errors.ts";
import { type DeviceRecord, digestHex, type ProfileName } from "../schemas/gpu-proof.ts";
import { awaitGpuJob, enqueueGpuJob, type QueueDeps } from "./gpu-jobs.ts";

export interface NodeChallenge {
  seed: string;
  profile: ProfileName;
  devices: { device: DeviceRecord; plaintext: string; encryptJobId: string }[];
}

/** Queues the sealing of one fresh plaintext per GPU under a fresh seed. */
export async function startNodeProof(
  deps: QueueDeps,
  input: { devices: DeviceRecord[]; profile: ProfileName; deadlineMs?: number },
): Promise<NodeChallenge> {
  const seed = randomSeed().toString();
  const devices = [];
  for (const device of input.devices) {
    const plaintext = `chutes-edge gpu proof ${crypto.randomUUID()}`;
    const job = await enqueueGpuJob(
      deps,
      "encrypt",
      { device, seed, profile: input.profile, plaintext },
      { deadlineMs: input.deadlineMs },
    );
    devices.push({ device, plaintext, encryptJobId: job.jobId });
  }
  return { seed, profile: input.profile, devices };
}

/** The sealed plaintexts by GPU uuid, once every encrypt job succeeded. */
export async function challengeCiphertexts(
  deps: QueueDeps,
  challenge: NodeChallenge,
  options: { timeoutMs: number },
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const { device, encryptJobId } of challenge.devices) {
    const job = await awaitGpuJob(deps, encryptJobId, options);
    const sealed = z.object({ ciphertext: z.string() }).safeParse(job.result);
    if (job.status !== "succeeded" || !sealed.success) {
      throw new ApiError("dependency_unavailable", `Sealing for GPU ${device.uuid} did not finish (${job.status}).`);
    }
    out[device.uuid] = sealed.data.ciphertext;
  }
  return out;
}

export const proofResponseSchema = z.record(
  z.string(),
  z.strictObject({ plaintext: z.string().max(1024), commitments: z.array(digestHex).max(16 * 4096) }),
);
export type ProofResponse = z.output<typeof proofResponseSchema>;

export type Judgement = { ok: true } | { ok: false; uuid: string; reason: string };

/** The checks that need no GPU: every GPU answered, decrypted, with a proof of the right shape, in time. */
export function judgeProofResponse(challenge: NodeChallenge, response: ProofResponse, elapsedMs: number): Judgement {
  for (const { device, plaintext } of challenge.devices) {
    const answer = response[device.uuid];
    if (!answer) return { ok: false, uuid: device.uuid, reason: "no answer for this GPU" };
    if (answer.plaintext !== plaintext) return { ok: false, uuid: device.uuid, reason: "wrong plaintext" };
    try {
      checkProofShape(shapeFor(challenge.profile, device), answer.commitments);
    } catch (error) {
      if (error instanceof ProofShapeError) return { ok: false, uuid: device.uuid, reason: error.message };
      throw error;
    }
    const verdict = timingVerdict(timeWindow(challenge.profile, device), elapsedMs);
    if (verdict !== "ok") return { ok: false, uuid: device.uuid, reason: `answered ${verdict.replace("_", " ")}` };
  }
  return { ok: true };
}

/** Queues one `verify` job per GPU at an index the miner cannot predict; returns their ids. */
export async function startProofChecks(
  deps: QueueDeps,
  challenge: NodeChallenge,
  response: ProofResponse,
  options: { deadlineMs?: number } = {},
): Promise<string[]> {
  const ids: string[] = [];
  for (const { device } of challenge.devices) {
    const shape = shapeFor(challenge.profile, device);
    const job = await enqueueGpuJob(
      deps,
      "verify",
      {
        device,
        seed: challenge.seed,
        profile: challenge.profile,
        commitments: response[device.uuid]?.commitments ?? [],
        check_index: randomIndex(shape.matrices),
      },
      { deadlineMs: options.deadlineMs },
    );
    ids.push(job.jobId);
  }
  return ids;
}

export type ProofVerdict = { valid: true } | { valid: false; reason: string };

/** Valid only when every verify job succeeded and found the proof valid. */
export async function proofVerdict(
  deps: QueueDeps,
  jobIds: string[],
  options: { timeoutMs: number },
): Promise<ProofVerdict> {
  for (const jobId of jobIds) {
    const job = await awaitGpuJob(deps, jobId, options);
    if (job.status !== "succeeded") return { valid: false, reason: `check ${jobId} ${job.status}` };
    const outcome = z.object({ valid: z.boolean() }).safeParse(job.result);
    if (!outcome.success || !outcome.data.valid)
      return { valid: false, reason: `check ${jobId} found the proof invalid` };
  }
  return { valid: true };
}
