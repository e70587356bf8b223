/**
 * @module Signing requests byte for byte as the chutes CLI 0.2.x does (upstream-sdk.md
 * §1.3), for the tests of every lane and the auth benchmark: sr25519 key pairs from
 * 32-byte seeds (`Keypair.create_from_seed`), the `X-Chutes-*` headers, and the body
 * serialisations the CLI sends (Python `json.dumps` for register, compact JSON
 * elsewhere). Web-standard APIs only, so it runs in workerd and in Node.
 */
import { encodeAddress } from "@polkadot/util-crypto/address";
import { sr25519PairFromSeed, sr25519Sign } from "@polkadot/util-crypto/sr25519";

export interface TestHotkey {
  ss58: string;
  seedHex: string;
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

const toHex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

export function hotkeyFromSeed(seedHex: string): TestHotkey {
  const seed = Uint8Array.from(seedHex.match(/../g) ?? [], (pair) => Number.parseInt(pair, 16));
  const pair = sr25519PairFromSeed(seed);
  return { ss58: encodeAddress(pair.publicKey, 42), seedHex, publicKey: pair.publicKey, secretKey: pair.secretKey };
}

export function randomHotkey(): TestHotkey {
  return hotkeyFromSeed(toHex(crypto.getRandomValues(new Uint8Array(32))));
}

/** Hex sr25519 signature (no 0x) of a UTF-8 message, as `Keypair.sign(...).hex()`. */
export function signText(key: TestHotkey, message: string): string {
  return toHex(sr25519Sign(new TextEncoder().encode(message), key));
}

export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes))));
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * Python's `uuid.uuid5(NAMESPACE_OID, name)`, which the SDK computes on its own side for
 * image ids (`{username}/{name}:{tag}`) and chute ids (`{username}::chute::{name}`).
 */
export async function sdkUuid5(name: string): Promise<string> {
  const namespace = "6ba7b8129dad11d180b400c04fd430c8".match(/../g) ?? [];
  const input = [...namespace.map((pair) => Number.parseInt(pair, 16)), ...new TextEncoder().encode(name)];
  const digits = toHex(new Uint8Array(await crypto.subtle.digest("SHA-1", new Uint8Array(input)))).split("");
  digits[12] = "5";
  digits[16] = ((Number.parseInt(digits[16] ?? "0", 16) & 0x3) | 0x8).toString(16);
  const hex = digits.slice(0, 32).join("");
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
}

export interface SignOptions {
  /** Signed when there is no body (GET/DELETE). */
  purpose?: string;
  /** The exact bytes to send; its SHA-256 is signed. */
  body?: string | Uint8Array;
  /** The body's type (default JSON, what the CLI sends for dict payloads). */
  contentType?: string;
  nonce?: number;
  /** X-Chutes-UserID, which the CLI sends from its config once registered. */
  userId?: string;
}

/** The headers `chutes.util.auth.sign_request` produces. */
export async function cliHeaders(key: TestHotkey, options: SignOptions): Promise<Record<string, string>> {
  const nonce = String(options.nonce ?? nowSeconds());
  const payload = options.body ? await sha256Hex(options.body) : options.purpose;
  if (payload === undefined) throw new Error("cliHeaders needs a body or a purpose");
  const headers: Record<string, string> = {
    "X-Chutes-Hotkey": key.ss58,
    "X-Chutes-Nonce": nonce,
    "X-Chutes-Signature": signText(key, `${key.ss58}:${nonce}:${payload}`),
  };
  if (options.userId) headers["X-Chutes-UserID"] = options.userId;
  if (options.body) headers["Content-Type"] = options.contentType ?? "application/json";
  return headers;
}

export interface MultipartField {
  name: string;
  value: string | Uint8Array;
  /** Makes the part a file upload. */
  filename?: string;
  /** Default: `text/plain; charset=utf-8` for text, `application/octet-stream` for files. */
  contentType?: string;
}

/**
 * A `multipart/form-data` body laid out as aiohttp's FormData writes it (what `chutes
 * build` and the logo upload send): a 32-hex-digit boundary, `Content-Type` then
 * `Content-Disposition` on each part, CRLF line breaks. The signature covers all of it.
 */
export function multipartBody(fields: MultipartField[]): { body: Uint8Array; contentType: string } {
  const boundary = toHex(crypto.getRandomValues(new Uint8Array(16)));
  const encoder = new TextEncoder();
  const chunks: Uint8Array[] = [];
  for (const field of fields) {
    const type = field.contentType ?? (field.filename ? "application/octet-stream" : "text/plain; charset=utf-8");
    const disposition = `form-data; name="${field.name}"${field.filename ? `; filename="${field.filename}"` : ""}`;
    chunks.push(
      encoder.encode(`--${boundary}\r\nContent-Type: ${type}\r\nContent-Disposition: ${disposition}\r\n\r\n`),
    );
    chunks.push(typeof field.value === "string" ? encoder.encode(field.value) : field.value);
    chunks.push(encoder.encode("\r\n"));
  }
  chunks.push(encoder.encode(`--${boundary}--\r\n`));
  const body = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

/**
 * Python's `json.dumps` with its defaults (`", "` and `": "` separators, non-ASCII as
 * `\uXXXX`), which is what `chutes register` and `refinger` put on the wire.
 */
export function pythonJsonDumps(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return JSON.stringify(value);
  if (typeof value === "string") {
    return JSON.stringify(value).replace(
      /[\u0080-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
  }
  if (Array.isArray(value)) return `[${value.map(pythonJsonDumps).join(", ")}]`;
  const entries = Object.entries(value as Record<string, unknown>);
  return `{${entries.map(([k, v]) => `${pythonJsonDumps(k)}: ${pythonJsonDumps(v)}`).join(", ")}}`;
}

/** Validator hotkeys the workers lane configures in VALIDATOR_HOTKEYS. */
export const TEST_VALIDATORS = [hotkeyFromSeed("7a".repeat(32)), hotkeyFromSeed("7b".repeat(32))] as const;
/** The subnet-owner hotkey the workers lane configures in SUBNET_OWNER_HOTKEYS. */
export const TEST_SUBNET_OWNER = hotkeyFromSeed("5b".repeat(32));
