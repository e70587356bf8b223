/**
 * @module Small cryptographic helpers on WebCrypto: lenient hex input, SHA-256,
 * constant-time comparison, unbiased random strings and sealing secrets at rest with an
 * app key (wallet mnemonics, instance session keys). Web-standard APIs only, so the
 * same code runs in workerd, in Node tests and in the Node-side tools.
 */
import { fromHex, toHex, utf8 } from "./bytes.ts";

const ANY_CASE_HEX = /^(?:[0-9a-fA-F]{2})*$/;

/**
 * Decodes hex from a client (no `0x`, either case); null when it is not an even run of
 * hex digits. Internal values use the strict lower-case `fromHex`.
 */
export function hexToBytes(hex: string): Uint8Array | null {
  return ANY_CASE_HEX.test(hex) ? fromHex(hex.toLowerCase()) : null;
}

/** SHA-256 of bytes or of a string's UTF-8, as lower-case hex. */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? utf8(data) : data;
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)));
}

/**
 * Compares two strings in time that depends only on their length, so a mismatch leaks
 * nothing about where it is. Lengths are not secret here: the values compared are
 * fixed-length hashes.
 */
export function timingSafeEqual(a: string, b: string): boolean {
  const x = utf8(a);
  const y = utf8(b);
  if (x.length !== y.length) return false;
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
// The largest multiple of 62 that fits in a byte: bytes at or above it are redrawn, so
// every character is equally likely (a plain `byte % 62` would favour the first eight).
const UNBIASED_LIMIT = 256 - (256 % ALPHANUMERIC.length);

/** `length` characters from [A-Za-z0-9], uniformly from a CSPRNG (rejection sampling). */
export function randomAlphanumeric(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of crypto.getRandomValues(new Uint8Array(length * 2))) {
      if (byte < UNBIASED_LIMIT) out += ALPHANUMERIC[byte % ALPHANUMERIC.length];
      if (out.length === length) break;
    }
  }
  return out;
}

async function appKey(keyHex: string, usage: "encrypt" | "decrypt"): Promise<CryptoKey> {
  const raw = hexToBytes(keyHex);
  if (raw?.length !== 32) throw new TypeError("the sealing key must be 32 bytes of hex");
  return crypto.subtle.importKey("raw", raw as Uint8Array<ArrayBuffer>, "AES-GCM", false, [usage]);
}

/**
 * AES-256-GCM with a 32-byte app key → `v1:{iv hex}:{ciphertext and tag hex}`. The
 * associated data binds the ciphertext to its row, so a sealed value copied elsewhere
 * does not open.
 */
export async function sealSecret(plaintext: Uint8Array, keyHex: string, associatedData: Uint8Array): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const key = await appKey(keyHex, "encrypt");
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: associatedData as Uint8Array<ArrayBuffer> },
    key,
    plaintext as Uint8Array<ArrayBuffer>,
  );
  return `v1:${toHex(iv)}:${toHex(new Uint8Array(sealed))}`;
}

/** Opens what `sealSecret` sealed; throws when the key, the context or the text is wrong. */
export async function openSecret(sealed: string, keyHex: string, associatedData: Uint8Array): Promise<Uint8Array> {
  const [version, iv, data] = sealed.split(":");
  const ivBytes = iv ? hexToBytes(iv) : null;
  const dataBytes = data ? hexToBytes(data) : null;
  if (version !== "v1" || !ivBytes || !dataBytes) throw new TypeError("not a sealed secret");
  const key = await appKey(keyHex, "decrypt");
  const plain = await crypto.subtle.decrypt(
    {
      name: "AES-GCM",
      iv: ivBytes as Uint8Array<ArrayBuffer>,
      additionalData: associatedData as Uint8Array<ArrayBuffer>,
    },
    key,
    dataBytes as Uint8Array<ArrayBuffer>,
  );
  return new Uint8Array(plain);
}
