/**
 * @module Signed GPU-agent requests (docs/protocols.md, "GPU agents"): the agents' scheme
 * of the shared service credential (src/lib/service-signatures.ts), label
 * `chutes-edge-agent-v1` and `X-Agent-*` headers.
 */
import {
  type ServiceScheme,
  type SignedParts,
  signServiceRequest,
  verifyServiceSignature,
} from "../lib/service-signatures.ts";

export const AGENT_SCHEME: ServiceScheme = {
  label: "chutes-edge-agent-v1",
  headers: { id: "x-agent-id", timestamp: "x-agent-timestamp", nonce: "x-agent-nonce", signature: "x-agent-signature" },
};

export const AGENT_HEADERS = AGENT_SCHEME.headers;

/** Signs a request as agent `agentId`; returns the headers to send with it. */
export function signAgentRequest(
  privateKey: CryptoKey,
  agentId: string,
  parts: Omit<SignedParts, "timestamp" | "nonce">,
  nowMs = Date.now(),
): Promise<Record<string, string>> {
  return signServiceRequest(AGENT_SCHEME, privateKey, agentId, parts, nowMs);
}

/** True when `signatureHex` is the Ed25519 signature of the request by `publicKeyHex`. */
export function verifyAgentSignature(publicKeyHex: string, signatureHex: string, parts: SignedParts): Promise<boolean> {
  return verifyServiceSignature(AGENT_SCHEME, publicKeyHex, signatureHex, parts);
}
