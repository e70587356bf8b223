/**
 * @module Hotkey signatures: sr25519 over a UTF-8 message, the way the chutes CLI,
 * miners and validators sign (substrate-interface `Keypair.sign`, signing context
 * `substrate`), plus the nonce window and the replay cache every signed request passes.
 *
 * The request scheme (docs/protocols.md, "API authentication"): headers
 * `X-Chutes-Hotkey` (ss58), `X-Chutes-Nonce` (Unix seconds), `X-Chutes-Signature`
 * (128 hex digits, no 0x) over `"{hotkey}:{nonce}:{payload}"`, where the payload is the
 * route's purpose word or the SHA-256 hex of the raw body bytes.
 *
 * `verifyHotkeyRequest` is the building block for anything a hotkey signs (users here,
 * miners later: a miner route checks the returned hotkey against the metagraph and needs
 * no user row). It knows nothing of Hono; src/lib/auth.ts wraps it for routes.
 *
 * The key and signature primitives are in src/lib/sr25519.ts.
 */
import { hexToBytes, sha256Hex } from "./crypto.ts";
import { ApiError } from "./errors.ts";
import type { Redis } from "./redis.ts";
import { ss58PublicKey, verifySr25519 } from "./sr25519.ts";

/** How far a nonce may be from the server's clock, either way (upstream: 600 s). */
export const SIGNATURE_WINDOW_SECONDS = 600;

export const HOTKEY_HEADER = "x-chutes-hotkey";
export const NONCE_HEADER = "x-chutes-nonce";
export const SIGNATURE_HEADER = "x-chutes-signature";
/** Sent by the CLI with its configured user id; checked against the signer when present. */
export const USER_ID_HEADER = "x-chutes-userid";

/** The string a hotkey signs for a request: `{hotkey}:{nonce}:{purpose or body sha256}`. */
export function hotkeyMessage(hotkey: string, nonce: string, payload: string): string {
  return `${hotkey}:${nonce}:${payload}`;
}

export interface SignatureCheck {
  /** ss58 address of the signer. */
  signer: string;
  nonce: string | undefined;
  signature: string | undefined;
  /** What the signer must have signed. */
  message: string;
  /** Nonce tolerance in seconds, either way. */
  windowSeconds: number;
}

export interface SignatureDeps {
  redis: Redis;
  now(): Date;
}

const unauthorized = (detail: string) => new ApiError("unauthorized", detail);

/** A signature that passed `verifySignature` and still has to pass the replay cache. */
export interface VerifiedSignature {
  signer: string;
  nonce: number;
  signature: string;
  windowSeconds: number;
}

/**
 * The CPU half of a check: nonce inside the window and a valid sr25519 signature by
 * `signer`. Throws 401 `unauthorized`. Never enough alone: `recordSignature` must follow.
 */
export function verifySignature(check: SignatureCheck, now: Date): VerifiedSignature {
  if (!check.signature) throw unauthorized("X-Chutes-Signature is missing: signed requests must carry one.");
  const nowSeconds = Math.floor(now.getTime() / 1000);
  const nonce = check.nonce ?? "";
  if (!/^\d{1,12}$/.test(nonce) || Math.abs(nowSeconds - Number(nonce)) >= check.windowSeconds) {
    throw unauthorized(
      `Invalid nonce: X-Chutes-Nonce must be the current Unix time in seconds (±${check.windowSeconds} s).`,
    );
  }
  const publicKey = ss58PublicKey(check.signer);
  if (!publicKey) throw unauthorized("The signing key is not a valid ss58 address.");
  if (!verifySr25519(check.message, check.signature, publicKey)) {
    throw unauthorized(`Invalid request signature for hotkey ${check.signer}.`);
  }
  return { signer: check.signer, nonce: Number(nonce), signature: check.signature, windowSeconds: check.windowSeconds };
}

/**
 * The replay half: accepts each signature once. Throws 401 for a signature seen before,
 * and 503 `dependency_unavailable` when the cache cannot be asked (fail closed: an
 * unchecked signature could be a replay).
 *
 * `SET auth:sig:{sha256(signature bytes)} 1 NX EX ttl`, where ttl reaches just past the
 * moment the nonce leaves the window (up to twice the window for a nonce dated in the
 * future). sr25519 signatures are randomised, so two honest requests with the same
 * message still differ; and @scure/sr25519 rejects non-canonical encodings, so one
 * signature has exactly one byte form to key on.
 */
export async function recordSignature(verified: VerifiedSignature, deps: SignatureDeps): Promise<void> {
  const key = `auth:sig:${await sha256Hex(hexToBytes(verified.signature) ?? new Uint8Array())}`;
  const ttl = verified.nonce + verified.windowSeconds - Math.floor(deps.now().getTime() / 1000) + 1;
  let fresh: unknown;
  try {
    fresh = await deps.redis.set(key, 1, { nx: true, ex: Math.max(ttl, 1) });
  } catch (error) {
    throw new ApiError(
      "dependency_unavailable",
      "The signature replay cache is unavailable, so signed requests cannot be accepted right now; retry shortly.",
      { headers: { "retry-after": "5" }, cause: error },
    );
  }
  if (fresh === null) throw unauthorized("This signature has already been used: sign every request afresh.");
}

/** Both halves: a valid, never-seen signature, or an `ApiError`. */
export async function checkSignature(check: SignatureCheck, deps: SignatureDeps): Promise<void> {
  await recordSignature(verifySignature(check, deps.now()), deps);
}

/** The `X-Chutes-*` headers of a request (absent or empty headers read as undefined). */
export function hotkeyHeaders(headers: Headers): { hotkey?: string; nonce?: string; signature?: string } {
  const read = (name: string) => headers.get(name)?.trim() || undefined;
  return { hotkey: read(HOTKEY_HEADER), nonce: read(NONCE_HEADER), signature: read(SIGNATURE_HEADER) };
}

/**
 * The CPU half for the standard hotkey scheme over `payload` (the route's purpose, or
 * the SHA-256 hex of the raw body). Callers that look something up for the hotkey can
 * run that concurrently with `recordSignature`.
 */
export function verifyHotkeyHeaders(headers: Headers, payload: string, now: Date): VerifiedSignature {
  const { hotkey, nonce, signature } = hotkeyHeaders(headers);
  if (!hotkey) throw unauthorized("X-Chutes-Hotkey is missing: sign the request with your hotkey.");
  const message = hotkeyMessage(hotkey, nonce ?? "", payload);
  return verifySignature({ signer: hotkey, nonce, signature, message, windowSeconds: SIGNATURE_WINDOW_SECONDS }, now);
}

/**
 * Verifies a request signed with the standard hotkey scheme (signature and replay cache)
 * and returns the signing hotkey. Knows nothing of users: the caller decides what the
 * hotkey may do (a user row, a metagraph entry, an allow-list).
 */
export async function verifyHotkeyRequest(headers: Headers, payload: string, deps: SignatureDeps): Promise<string> {
  const verified = verifyHotkeyHeaders(headers, payload, deps.now());
  await recordSignature(verified, deps);
  return verified.signer;
}
