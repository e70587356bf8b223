/**
 * @module Authentication of signed service requests (GPU agents, image builders): the
 * Ed25519 signature with the service's registered key, the clock window, a disabled
 * service (403), and replay.
 *
 * Replay cache: Redis `{prefix}:nonce:{id}:{nonce}` (SET NX, TTL 2 × the clock window plus
 * a minute): a nonce seen inside the window is refused, and a request outside the window
 * is refused by its timestamp, so the cache never needs to remember longer.
 */

import { ApiError } from "../lib/errors.ts";
import {
  SERVICE_CLOCK_SKEW_S,
  SERVICE_NONCE,
  type ServiceScheme,
  verifyServiceSignature,
} from "../lib/service-signatures.ts";

export const NONCE_TTL_S = 2 * SERVICE_CLOCK_SKEW_S + 60;

/** The one Redis command the replay cache needs (kept narrow so Node-side callers type-check without Worker types). */
export interface NonceStore {
  set(key: string, value: string, options: { nx: true; ex: number }): Promise<unknown>;
}

export interface ServiceRequest {
  method: string;
  /** Path and query as requested. */
  target: string;
  headers: Headers;
  body: Uint8Array;
}

export interface ServiceKind<T> {
  scheme: ServiceScheme;
  /** For messages: `GPU agent`, `builder`. */
  noun: string;
  /** Redis key prefix of the replay cache, e.g. `gpu_agent`. */
  noncePrefix: string;
  find(id: string): Promise<(T & { publicKey: string; disabled: boolean }) | null>;
  /** Records that the service was seen (after every check passed). */
  touch(id: string): Promise<void>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The service behind a signed request, or 401/403. Nothing is written unless every check
 * passes, and then only the nonce (so a replay of this very request fails) and `touch`.
 */
export async function authenticateService<T>(
  deps: { redis: NonceStore; now(): Date },
  kind: ServiceKind<T>,
  request: ServiceRequest,
): Promise<T & { publicKey: string; disabled: boolean }> {
  const names = kind.scheme.headers;
  const header = (name: string) => request.headers.get(name) ?? "";
  const id = header(names.id);
  const timestampText = header(names.timestamp);
  const nonce = header(names.nonce);
  const signature = header(names.signature);
  if (!UUID.test(id) || !/^\d{1,12}$/.test(timestampText) || !SERVICE_NONCE.test(nonce) || !signature) {
    throw new ApiError(
      "unauthorized",
      `${kind.noun} requests must be signed: ${Object.values(names).join(", ")} (see docs/protocols.md).`,
    );
  }
  const service = await kind.find(id);
  if (!service) throw new ApiError("unauthorized", `Unknown ${kind.noun}.`);
  const timestamp = Number(timestampText);
  const valid = await verifyServiceSignature(kind.scheme, service.publicKey, signature, {
    method: request.method,
    target: request.target,
    timestamp,
    nonce,
    body: request.body,
  });
  if (!valid) throw new ApiError("unauthorized", `The request signature does not verify with this ${kind.noun}'s key.`);
  const skew = Math.abs(deps.now().getTime() / 1000 - timestamp);
  if (skew > SERVICE_CLOCK_SKEW_S) {
    throw new ApiError("unauthorized", `The request timestamp is ${Math.round(skew)} s away from the server clock.`);
  }
  if (service.disabled) throw new ApiError("forbidden", `This ${kind.noun} is disabled.`);
  const fresh = await deps.redis.set(`${kind.noncePrefix}:nonce:${id}:${nonce}`, "1", { nx: true, ex: NONCE_TTL_S });
  if (fresh === null) throw new ApiError("unauthorized", "This request was already received (replayed nonce).");
  await kind.touch(id);
  return service;
}
