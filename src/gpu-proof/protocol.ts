/**
 * @module The GPU proof protocol on top of the engine (docs/gpu-proof.md): the canonical
 * device record, the seed material K, commitments, the prover, the verifier, key
 * derivation and the payload cipher. Every function takes an `Executor`, so the same code
 * drives the CPU reference (tests, CPU mode) and the CUDA sidecar (GPU mode).
 */
import { hkdf } from "@noble/hashes/hkdf";
import { sha256 } from "@noble/hashes/sha2";
import { bytesEqual, concatBytes, fromBase64, fromHex, toBase64, toHex, u32be, u64be, utf8 } from "../lib/bytes.ts";
import type { DeviceRecord, ProofParams } from "../schemas/gpu-proof.ts";
import { conePlan, type Executor, provePlan, type Shape } from "./engine.ts";
import { shapeFor } from "./profiles.ts";

export const DOMAIN = "chutes-edge/gpu-proof/v1";
const RECORD_VERSION = 1;

/** The canonical device record: fixed field order, big-endian integers, length-prefixed name. */
export function canonicalRecord(device: DeviceRecord): Uint8Array {
  const name = utf8(device.name);
  if (name.length < 1 || name.length > 63) throw new RangeError("device name must be 1–63 bytes of UTF-8");
  return concatBytes(
    new Uint8Array([RECORD_VERSION, name.length]),
    name,
    fromHex(device.uuid),
    u64be(BigInt(device.memory)),
    u32be(device.major),
    u32be(device.minor),
    u32be(device.processors),
    new Uint8Array([device.sxm ? 1 : 0]),
    u32be(device.clock_rate),
    u32be(device.max_threads_per_processor),
    new Uint8Array([device.concurrent_kernels ? 1 : 0, device.ecc ? 1 : 0]),
  );
}

/** K = SHA-256(DOMAIN ‖ 0x00 ‖ record ‖ u64be(seed) ‖ u32be(T) ‖ u32be(n) ‖ u32be(N)). */
export function seedMaterial(device: DeviceRecord, seed: bigint, shape: Shape): Uint8Array {
  return sha256(
    concatBytes(
      utf8(DOMAIN),
      new Uint8Array([0]),
      canonicalRecord(device),
      u64be(seed),
      u32be(shape.iterations),
      u32be(shape.n),
      u32be(shape.matrices),
    ),
  );
}

/** A proof's resolved parameters: the shape and K. */
export interface Resolved {
  shape: Shape;
  key: Uint8Array;
}

export function resolve(params: ProofParams): Resolved {
  const shape = shapeFor(params.profile, params.device);
  return { shape, key: seedMaterial(params.device, params.seed, shape) };
}

/** H[t][m] = SHA-256(DOMAIN "/commit" ‖ K ‖ u32be(t) ‖ u32be(m) ‖ root). */
export function commitment(key: Uint8Array, t: number, m: number, root: Uint8Array): Uint8Array {
  return sha256(concatBytes(utf8(`${DOMAIN}/commit`), key, u32be(t), u32be(m), root));
}

export interface ProofOutput {
  /** T × N commitments, iteration-major, lower-case hex. */
  commitments: string[];
  /** Tree roots of the final states, by matrix: the prover's keys come from these. */
  finalRoots: Uint8Array[];
}

export async function prove(resolved: Resolved, execute: Executor): Promise<ProofOutput> {
  const { shape, key } = resolved;
  const commitments = new Array<string>(shape.iterations * shape.matrices);
  const finalRoots = new Array<Uint8Array>(shape.matrices);
  for (const { t, m, root } of await execute(provePlan(key, shape))) {
    commitments[t * shape.matrices + m] = toHex(commitment(key, t, m, root));
    if (t === shape.iterations - 1) finalRoots[m] = root;
  }
  return { commitments, finalRoots };
}

export class ProofShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProofShapeError";
  }
}

/** Throws `ProofShapeError` unless the proof has exactly T × N commitments. */
export function checkProofShape(shape: Shape, commitments: readonly string[]): void {
  const expected = shape.iterations * shape.matrices;
  if (commitments.length !== expected) {
    throw new ProofShapeError(
      `the proof has ${commitments.length} commitments; this profile needs ${expected} (${shape.iterations} iterations × ${shape.matrices} matrices)`,
    );
  }
  if (!commitments.every((c) => /^[0-9a-f]{64}$/.test(c))) {
    throw new ProofShapeError("every commitment must be 64 lower-case hex digits");
  }
}

export interface VerifyOutcome {
  valid: boolean;
  check_index: number;
  /** How many commitments the cone recomputed and compared. */
  checked: number;
  mismatch?: { t: number; m: number };
}

/**
 * Recomputes the dependency cone of matrix `checkIndex` and compares every commitment it
 * produces with the proof; one differing byte makes the proof invalid.
 */
export async function verifyProof(
  resolved: Resolved,
  commitments: readonly string[],
  checkIndex: number,
  execute: Executor,
): Promise<VerifyOutcome> {
  const { shape, key } = resolved;
  checkProofShape(shape, commitments);
  if (!Number.isInteger(checkIndex) || checkIndex < 0 || checkIndex >= shape.matrices) {
    throw new ProofShapeError(`check_index must be between 0 and ${shape.matrices - 1}`);
  }
  const roots = await execute(conePlan(key, shape, checkIndex));
  for (const { t, m, root } of roots) {
    const claimed = fromHex(commitments[t * shape.matrices + m] as string);
    if (!bytesEqual(claimed, commitment(key, t, m, root))) {
      return { valid: false, check_index: checkIndex, checked: roots.length, mismatch: { t, m } };
    }
  }
  return { valid: true, check_index: checkIndex, checked: roots.length };
}

/** The payload key of matrix m: HKDF-SHA256(ikm = final root of m, salt = K, info = DOMAIN "/key" ‖ u32be(m)). */
export function payloadKey(key: Uint8Array, m: number, finalRoot: Uint8Array): Uint8Array {
  return hkdf(sha256, finalRoot, key, concatBytes(utf8(`${DOMAIN}/key`), u32be(m)), 32);
}

async function aesKey(raw: Uint8Array, usage: "encrypt" | "decrypt"): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", new Uint8Array(raw), { name: "AES-GCM" }, false, [usage]);
}

/** AES-256-GCM with a fresh 96-bit nonce and K as associated data; wire: base64(nonce ‖ ct ‖ tag). */
export async function sealPayload(payloadKeyBytes: Uint8Array, key: Uint8Array, plaintext: string): Promise<string> {
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: new Uint8Array(key) },
    await aesKey(payloadKeyBytes, "encrypt"),
    new Uint8Array(utf8(plaintext)),
  );
  return toBase64(concatBytes(nonce, new Uint8Array(sealed)));
}

/** Opens a sealed payload, or returns null when the key (or anything else) is wrong. */
export async function openPayload(payloadKeyBytes: Uint8Array, key: Uint8Array, wire: string): Promise<string | null> {
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(wire);
  } catch {
    return null;
  }
  if (bytes.length < 12 + 16) return null;
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: bytes.slice(0, 12), additionalData: new Uint8Array(key) },
      await aesKey(payloadKeyBytes, "decrypt"),
      bytes.slice(12),
    );
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(plain);
  } catch {
    return null;
  }
}

/**
 * The validator's side: seal `plaintext` under the key of matrix `secretIndex`, computing
 * only that matrix's cone. The index stays with the validator, so a prover must finish
 * every matrix to be sure of holding the key.
 */
export async function encryptForDevice(
  resolved: Resolved,
  plaintext: string,
  secretIndex: number,
  execute: Executor,
): Promise<string> {
  const { shape, key } = resolved;
  const roots = await execute(conePlan(key, shape, secretIndex));
  const final = roots.find((r) => r.t === shape.iterations - 1 && r.m === secretIndex);
  if (!final) throw new Error("the cone did not produce the final state it was planned for");
  return sealPayload(payloadKey(key, secretIndex, final.root), key, plaintext);
}

/** The prover's side: try the key of every final state (AES-GCM's tag tells the right one). */
export async function decryptWithProof(resolved: Resolved, proof: ProofOutput, wire: string): Promise<string | null> {
  for (const [m, root] of proof.finalRoots.entries()) {
    const plain = await openPayload(payloadKey(resolved.key, m, root), resolved.key, wire);
    if (plain !== null) return plain;
  }
  return null;
}

/** A uniformly random u64 seed from the platform CSPRNG. */
export function randomSeed(): bigint {
  const view = new DataView(crypto.getRandomValues(new Uint8Array(8)).buffer);
  return view.getBigUint64(0, false);
}

/** A uniformly random index below `bound` (rejection sampling, no modulo bias). */
export function randomIndex(bound: number): number {
  if (!Number.isInteger(bound) || bound < 1 || bound > 0xffffffff) throw new RangeError("bad bound");
  const limit = 0x100000000 - (0x100000000 % bound);
  for (;;) {
    const value = crypto.getRandomValues(new Uint32Array(1))[0] as number;
    if (value < limit) return value % bound;
  }
}
