/**
 * @module Signed GPU-agent requests (docs/protocols.md, "GPU agents"): the string an agent
 * signs with its Ed25519 key and the check the API makes. WebCrypto only (Ed25519 is in
 * workerd and in Node 22), so the agent signs and the Worker verifies with the same code.
 *
 * Signed string, one field per line:
 * `chutes-edge-agent-v1 \n METHOD \n /path?query \n timestamp \n nonce \n sha256_hex(body)`.
 */
import { sha256 } from "@noble/hashes/sha2";
import { fromHex, toHex, utf8 } from "../lib/bytes.ts";

export const AGENT_HEADERS = {
  agentId: "x-agent-id",
  timestamp: "x-agent-timestamp",
  nonce: "x-agent-nonce",
  signature: "x-agent-signature",
} as const;

/** Accepted clock difference, either direction, in seconds. */
export const AGENT_CLOCK_SKEW_S = 30;
export const AGENT_NONCE = /^[0-9a-f]{32,64}$/;

export interface SignedParts {
  method: string;
  /** Path and query exactly as requested. */
  target: string;
  /** Unix seconds. */
  timestamp: number;
  nonce: string;
  body: Uint8Array;
}

export function agentSigningString(parts: SignedParts): Uint8Array {
  return utf8(
    [
      "chutes-edge-agent-v1",
      parts.method.toUpperCase(),
      parts.target,
      String(parts.timestamp),
      parts.nonce,
      toHex(sha256(parts.body)),
    ].join("\n"),
  );
}

/** Signs a request; returns the headers to send with it. */
export async function signAgentRequest(
  privateKey: CryptoKey,
  agentId: string,
  parts: Omit<SignedParts, "timestamp" | "nonce">,
  nowMs = Date.now(),
): Promise<Record<string, string>> {
  const timestamp = Math.floor(nowMs / 1000);
  const nonce = toHex(crypto.getRandomValues(new Uint8Array(16)));
  const message = new Uint8Array(agentSigningString({ ...parts, timestamp, nonce }));
  const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, privateKey, message));
  return {
    [AGENT_HEADERS.agentId]: agentId,
    [AGENT_HEADERS.timestamp]: String(timestamp),
    [AGENT_HEADERS.nonce]: nonce,
    [AGENT_HEADERS.signature]: toHex(signature),
  };
}

/** True when `signatureHex` is the Ed25519 signature of the request by `publicKeyHex`. */
export async function verifyAgentSignature(
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
    new Uint8Array(agentSigningString(parts)),
  );
}
