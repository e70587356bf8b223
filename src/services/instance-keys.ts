/**
 * @module Per-instance session keys (architecture §5.7). The validator draws a fresh
 * 32-byte key for each instance at key exchange, hands it to the instance wrapped with
 * the GPU-proof key, and keeps it in `instances.session_key` sealed with `WALLET_KEY`
 * and bound to the instance id. The gateway opens it to encrypt invocations; no endpoint
 * ever returns it.
 */
import { utf8 } from "../lib/bytes.ts";
import { openSecret, sealSecret } from "../lib/crypto.ts";

export const SESSION_KEY_BYTES = 32;

export function generateSessionKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(SESSION_KEY_BYTES));
}

const sessionKeyContext = (instanceId: string) => utf8(`chutes-edge/instance/${instanceId}/session-key`);

/** The value stored in `instances.session_key`. */
export function sealSessionKey(key: Uint8Array, walletKeyHex: string, instanceId: string): Promise<string> {
  return sealSecret(key, walletKeyHex, sessionKeyContext(instanceId));
}

/** The raw session key of a stored instance; throws when it was sealed for another instance or key. */
export async function openSessionKey(sealed: string, walletKeyHex: string, instanceId: string): Promise<Uint8Array> {
  const key = await openSecret(sealed, walletKeyHex, sessionKeyContext(instanceId));
  if (key.length !== SESSION_KEY_BYTES) throw new TypeError("a session key is 32 bytes");
  return key;
}
