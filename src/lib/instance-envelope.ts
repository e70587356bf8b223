/**
 * @module The invocation envelope between the gateway and a chute instance (both sides;
 * docs/protocols.md, "Instance protocol"). Everything is keyed by the instance's 32-byte
 * session key, handed over once at key exchange (architecture §5.7), so no per-call
 * sr25519 work is needed on either side.
 *
 * Request (gateway → instance): `POST /_invoke` with headers
 * `X-Chutes-Envelope: v1`, `X-Chutes-Invocation-Id`, `X-Chutes-Timestamp` (Unix ms) and
 * `X-Chutes-Nonce` (12 random bytes, hex: the AES-GCM IV), body
 * `AES-256-GCM(encKey, iv = nonce, aad = "chutes-edge/invoke/v1/{instance}/{invocation}/{timestamp}")`
 * of `u32be(len(meta)) ‖ meta ‖ request body`, where meta is the JSON
 * `{"method","path","query","content_type"}` of the call. Confidential and authenticated;
 * the instance refuses a timestamp outside its window or a nonce it has seen (replay).
 *
 * Response (instance → gateway): status, headers and body in the clear, plus
 * `X-Chutes-Response-Mac: hex(HMAC-SHA256(macKey, "chutes-edge/response/v1/{instance}/{invocation}/{nonce}/{status}/{content-type}"))`.
 * The MAC proves the answer comes from the key holder and belongs to this request (the
 * nonce is fresh per request), while the body passes through the gateway natively, with
 * no per-chunk JavaScript (perf-anchors.md: a JS pipe costs ~20 ms of first byte at 16
 * streams). The body itself is not covered: the trade is documented in docs/protocols.md.
 *
 * Keys: `HKDF-SHA256(sessionKey, salt "chutes-edge/envelope/v1", info "enc/{instance}" | "mac/{instance}")`.
 * The liveness ping (`POST /_ping`) keeps the contract's MAC over the raw session key.
 */
import { concatBytes, toHex, u32be, utf8 } from "./bytes.ts";
import { hexToBytes } from "./crypto.ts";

export const ENVELOPE_VERSION = "v1";
export const INVOKE_PATH = "/_invoke";
export const ENVELOPE_HEADER = "x-chutes-envelope";
export const INVOCATION_ID_HEADER = "x-chutes-invocation-id";
export const TIMESTAMP_HEADER = "x-chutes-timestamp";
export const ENVELOPE_NONCE_HEADER = "x-chutes-nonce";
export const RESPONSE_MAC_HEADER = "x-chutes-response-mac";

/** How far a request's timestamp may be from the instance's clock, either way. */
export const ENVELOPE_WINDOW_MS = 60_000;
/** The largest meta block an instance accepts (method, path, query, content type). */
const MAX_META_BYTES = 16 * 1024;
const NONCE_BYTES = 12;

export interface EnvelopeKeys {
  instanceId: string;
  enc: CryptoKey;
  mac: CryptoKey;
}

const SALT = utf8("chutes-edge/envelope/v1");

/** The envelope's AES and HMAC keys for one instance, derived from its session key. */
export async function deriveEnvelopeKeys(sessionKey: Uint8Array, instanceId: string): Promise<EnvelopeKeys> {
  if (sessionKey.length !== 32) throw new TypeError("a session key is 32 bytes");
  const base = await crypto.subtle.importKey("raw", sessionKey as Uint8Array<ArrayBuffer>, "HKDF", false, [
    "deriveKey",
  ]);
  const hkdf = (label: string) => ({
    name: "HKDF",
    hash: "SHA-256",
    salt: SALT as Uint8Array<ArrayBuffer>,
    info: utf8(`${label}/${instanceId}`) as Uint8Array<ArrayBuffer>,
  });
  const [enc, mac] = await Promise.all([
    crypto.subtle.deriveKey(hkdf("enc"), base, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]),
    crypto.subtle.deriveKey(hkdf("mac"), base, { name: "HMAC", hash: "SHA-256", length: 256 }, false, [
      "sign",
      "verify",
    ]),
  ]);
  return { instanceId, enc, mac };
}

export interface InvocationCall {
  invocationId: string;
  method: string;
  /** The cord's path on the instance (e.g. `/chat_stream`). */
  path: string;
  /** The query string without `?` (may be empty). */
  query: string;
  contentType: string | null;
  body: Uint8Array;
}

export interface SealedInvocation {
  headers: Record<string, string>;
  body: Uint8Array;
  /** The request nonce, which the response MAC must cover. */
  nonce: string;
}

const requestAad = (instanceId: string, invocationId: string, timestamp: string) =>
  utf8(`chutes-edge/invoke/${ENVELOPE_VERSION}/${instanceId}/${invocationId}/${timestamp}`);

/** Gateway side: encrypts and authenticates one call for `keys.instanceId`. */
export async function sealInvocation(
  keys: EnvelopeKeys,
  call: InvocationCall,
  nowMs = Date.now(),
): Promise<SealedInvocation> {
  const iv = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const timestamp = String(nowMs);
  const meta = utf8(
    JSON.stringify({ method: call.method, path: call.path, query: call.query, content_type: call.contentType }),
  );
  const plain = concatBytes(u32be(meta.length), meta, call.body);
  const sealed = await crypto.subtle.encrypt(
    {
      name: "AES-GCM",
      iv,
      additionalData: requestAad(keys.instanceId, call.invocationId, timestamp) as Uint8Array<ArrayBuffer>,
    },
    keys.enc,
    plain as Uint8Array<ArrayBuffer>,
  );
  const nonce = toHex(iv);
  return {
    nonce,
    body: new Uint8Array(sealed),
    headers: {
      "content-type": "application/octet-stream",
      [ENVELOPE_HEADER]: ENVELOPE_VERSION,
      [INVOCATION_ID_HEADER]: call.invocationId,
      [TIMESTAMP_HEADER]: timestamp,
      [ENVELOPE_NONCE_HEADER]: nonce,
    },
  };
}

/** Why an instance refused an envelope: the HTTP status it answers and a detail. */
export class EnvelopeError extends Error {
  readonly status: 400 | 401;

  constructor(status: 400 | 401, message: string) {
    super(message);
    this.name = "EnvelopeError";
    this.status = status;
  }
}

/**
 * Remembers the nonces of accepted requests until their timestamp leaves the window, so
 * a captured request cannot be played again (a nonce outside the window is refused on
 * its timestamp alone).
 */
export class ReplayGuard {
  #seen = new Map<string, number>();
  #lastSweep = 0;

  readonly windowMs: number;

  constructor(windowMs = ENVELOPE_WINDOW_MS) {
    this.windowMs = windowMs;
  }

  /** True (and recorded) when `nonce` is fresh and `timestampMs` within the window. */
  accept(nonce: string, timestampMs: number, nowMs = Date.now()): boolean {
    if (!Number.isFinite(timestampMs) || Math.abs(nowMs - timestampMs) > this.windowMs) return false;
    if (nowMs - this.#lastSweep > this.windowMs) {
      for (const [seen, expires] of this.#seen) if (expires <= nowMs) this.#seen.delete(seen);
      this.#lastSweep = nowMs;
    }
    if (this.#seen.has(nonce)) return false;
    this.#seen.set(nonce, timestampMs + 2 * this.windowMs);
    return true;
  }

  get size(): number {
    return this.#seen.size;
  }
}

export interface OpenedInvocation extends InvocationCall {
  nonce: string;
}

/**
 * Instance side: checks and decrypts one `POST /_invoke`. Throws `EnvelopeError` 400
 * for a malformed envelope, 401 for one that does not authenticate, is stale or replayed.
 */
export async function openInvocation(
  keys: EnvelopeKeys,
  headers: Headers,
  body: Uint8Array,
  guard: ReplayGuard,
  nowMs = Date.now(),
): Promise<OpenedInvocation> {
  if (headers.get(ENVELOPE_HEADER) !== ENVELOPE_VERSION) {
    throw new EnvelopeError(400, `${ENVELOPE_HEADER} must be ${ENVELOPE_VERSION}`);
  }
  const invocationId = headers.get(INVOCATION_ID_HEADER) ?? "";
  const timestamp = headers.get(TIMESTAMP_HEADER) ?? "";
  const nonce = headers.get(ENVELOPE_NONCE_HEADER) ?? "";
  if (!/^[0-9a-f-]{1,64}$/.test(invocationId))
    throw new EnvelopeError(400, `${INVOCATION_ID_HEADER} is missing or malformed`);
  if (!/^\d{1,15}$/.test(timestamp)) throw new EnvelopeError(400, `${TIMESTAMP_HEADER} is missing or malformed`);
  const iv = hexToBytes(nonce);
  if (iv?.length !== NONCE_BYTES || nonce !== nonce.toLowerCase()) {
    throw new EnvelopeError(400, `${ENVELOPE_NONCE_HEADER} must be ${NONCE_BYTES} bytes of lower-case hex`);
  }
  let plain: Uint8Array;
  try {
    plain = new Uint8Array(
      await crypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: iv as Uint8Array<ArrayBuffer>,
          additionalData: requestAad(keys.instanceId, invocationId, timestamp) as Uint8Array<ArrayBuffer>,
        },
        keys.enc,
        body as Uint8Array<ArrayBuffer>,
      ),
    );
  } catch {
    throw new EnvelopeError(401, "the envelope does not authenticate with this instance's session key");
  }
  // Only an authentic request may consume a nonce, so garbage cannot fill the cache.
  if (!guard.accept(nonce, Number(timestamp), nowMs)) {
    throw new EnvelopeError(401, "stale or replayed envelope (timestamp outside the window, or nonce seen before)");
  }
  const metaLength = plain.length >= 4 ? new DataView(plain.buffer, plain.byteOffset, 4).getUint32(0, false) : -1;
  if (metaLength < 0 || metaLength > MAX_META_BYTES || 4 + metaLength > plain.length) {
    throw new EnvelopeError(400, "the envelope's meta block is malformed");
  }
  let meta: { method?: unknown; path?: unknown; query?: unknown; content_type?: unknown };
  try {
    meta = JSON.parse(new TextDecoder().decode(plain.subarray(4, 4 + metaLength)));
  } catch {
    throw new EnvelopeError(400, "the envelope's meta block is not JSON");
  }
  if (typeof meta.method !== "string" || typeof meta.path !== "string" || !meta.path.startsWith("/")) {
    throw new EnvelopeError(400, "the envelope's meta block needs a method and a path");
  }
  return {
    invocationId,
    nonce,
    method: meta.method,
    path: meta.path,
    query: typeof meta.query === "string" ? meta.query : "",
    contentType: typeof meta.content_type === "string" ? meta.content_type : null,
    body: plain.subarray(4 + metaLength),
  };
}

const responseMessage = (
  instanceId: string,
  invocationId: string,
  nonce: string,
  status: number,
  contentType: string,
) => utf8(`chutes-edge/response/${ENVELOPE_VERSION}/${instanceId}/${invocationId}/${nonce}/${status}/${contentType}`);

/** Instance side: the `X-Chutes-Response-Mac` value for its answer to a request. */
export async function responseMac(
  keys: EnvelopeKeys,
  invocationId: string,
  nonce: string,
  status: number,
  contentType: string | null,
): Promise<string> {
  const message = responseMessage(keys.instanceId, invocationId, nonce, status, contentType ?? "");
  return toHex(new Uint8Array(await crypto.subtle.sign("HMAC", keys.mac, message as Uint8Array<ArrayBuffer>)));
}

/** Gateway side: true when `response` carries a valid MAC for the request with `nonce`. */
export async function verifyResponseMac(
  keys: EnvelopeKeys,
  invocationId: string,
  nonce: string,
  response: { status: number; headers: Headers },
): Promise<boolean> {
  const mac = hexToBytes(response.headers.get(RESPONSE_MAC_HEADER) ?? "");
  if (mac?.length !== 32) return false;
  const message = responseMessage(
    keys.instanceId,
    invocationId,
    nonce,
    response.status,
    response.headers.get("content-type") ?? "",
  );
  // HMAC verify compares in constant time.
  return crypto.subtle.verify("HMAC", keys.mac, mac as Uint8Array<ArrayBuffer>, message as Uint8Array<ArrayBuffer>);
}

/** The `/_ping` answer: `hex(HMAC-SHA256(sessionKey, "chutes-edge/ping/{instance}/{nonce}"))`. */
export async function pingMac(sessionKey: Uint8Array, instanceId: string, nonce: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    sessionKey as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign(
    "HMAC",
    key,
    utf8(`chutes-edge/ping/${instanceId}/${nonce}`) as Uint8Array<ArrayBuffer>,
  );
  return toHex(new Uint8Array(mac));
}

/** A fresh `/_ping` nonce (16 random bytes as 32 hex digits). */
export const pingNonce = (): string => toHex(crypto.getRandomValues(new Uint8Array(16)));

/** Whether `value` is a `/_ping` nonce as the contract spells it. */
export const isPingNonce = (value: unknown): value is string =>
  typeof value === "string" && /^[0-9a-f]{32}$/.test(value);
