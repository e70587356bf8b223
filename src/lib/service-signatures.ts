/**
 * @module Signed service requests: the Ed25519 credential of the platform's own off-edge
 * processes (GPU agents, image builders). One scheme per kind of service, differing only
 * in its label and header names, so a signature made for one kind is never valid for
 * another. WebCrypto only (Ed25519 is in workerd and in Node 22): the services sign and
 * the Worker verifies with this same code.
 *
 * Signed string, one field per line:
 * `{label} \n METHOD \n /path?query \n timestamp \n nonce \n sha256_hex(body)`.
 */
import { sha256 } from "@noble/hashes/sha2";
import { fromHex, toHex, utf8 } from "./bytes.ts";

export interface ServiceScheme {
  /** First line of the signed string, e.g. `chutes-edge-agent-v1`. */
  label: string;
  headers: { id: string; timestamp: string; nonce: string; signature: string };
}

/** Accepted clock difference, either direction, in seconds. */
export const SERVICE_CLOCK_SKEW_S = 30;
export const SERVICE_NONCE = /^[0-9a-f]{32,64}$/;

export interface SignedParts {
  method: string;
  /** Path and query exactly as requested. */
  target: string;
  /** Unix seconds. */
  timestamp: number;
  nonce: string;
  body: Uint8Array;
}

export function serviceSigningString(scheme: ServiceScheme, parts: SignedParts): Uint8Array {
  return utf8(
    [
      scheme.label,
      parts.method.toUpperCase(),
      parts.target,
      String(parts.timestamp),
      parts.nonce,
      toHex(sha256(parts.body)),
    ].join("\n"),
  );
}

/** Signs a request as service `id`; returns the headers to send with it. */
export async function signServiceRequest(
  scheme: ServiceScheme,
  privateKey: CryptoKey,
  id: string,
  parts: Omit<SignedParts, "timestamp" | "nonce">,
  nowMs = Date.now(),
): Promise<Record<string, string>> {
  const timestamp = Math.floor(nowMs / 1000);
  const nonce = toHex(crypto.getRandomValues(new Uint8Array(16)));
  const message = new Uint8Array(serviceSigningString(scheme, { ...parts, timestamp, nonce }));
  const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, privateKey, message));
  return {
    [scheme.headers.id]: id,
    [scheme.headers.timestamp]: String(timestamp),
    [scheme.headers.nonce]: nonce,
    [scheme.headers.signature]: toHex(signature),
  };
}

/** True when `signatureHex` is the Ed25519 signature of the request by `publicKeyHex`. */
export async function verifyServiceSignature(
  scheme: ServiceScheme,
  publicKeyHex: string,
  signatureHex: string,
  parts: SignedParts,
): Promise<boolean> {
  if (!/^[0-9a-f]{128}$/.test(signatureHex) || !/^[0-9a-f]{64}$/.test(publicKeyHex)) return false;
  const key = await crypto.subtle.importKey("raw", new Uint8Array(fromHex(publicKeyHex)), { name: "Ed25519" }, false, [
    "verify",
  ]);
  return crypto.subtle.verify(
    { name: "Ed25519" },
    key,
    new Uint8Array(fromHex(signatureHex)),
    new Uint8Array(serviceSigningString(scheme, parts)),
  );
}
