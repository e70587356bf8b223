/**
 * @module sr25519 keys and signatures as substrate-interface and polkadot.js make them:
 * ss58 addresses, and verifying a signature over a UTF-8 message (signing context
 * `substrate`). Pure, with no Worker or Node types, so the Worker, the verifier CLI and
 * other Node tools share it.
 *
 * polkadot's WASM cannot load in workerd and `cryptoWaitReady()` must never be called
 * there: the deep imports below are the pure-JS paths (@scure/sr25519).
 */
import { decodeAddress } from "@polkadot/util-crypto/address";
import { sr25519Verify } from "@polkadot/util-crypto/sr25519";
import { fromHex, utf8 } from "./bytes.ts";

/** The 32-byte public key of an ss58 address (any network prefix), or null if invalid. */
export function ss58PublicKey(address: string): Uint8Array | null {
  if (!/^[1-9A-HJ-NP-Za-km-z]{46,50}$/.test(address)) return null;
  try {
    const key = decodeAddress(address);
    return key.length === 32 ? key : null;
  } catch {
    return null;
  }
}

export function isSs58Address(address: string): boolean {
  return ss58PublicKey(address) !== null;
}

/**
 * True when `signatureHex` is an sr25519 signature by `publicKey` of `message`, or of
 * `<Bytes>{message}</Bytes>` (how polkadot.js browser extensions wrap what they sign;
 * substrate-interface accepts both).
 */
export function verifySr25519(message: string, signatureHex: string, publicKey: Uint8Array): boolean {
  if (!/^[0-9a-fA-F]{128}$/.test(signatureHex)) return false;
  const signature = fromHex(signatureHex.toLowerCase());
  const attempt = (text: string) => {
    try {
      return sr25519Verify(utf8(text), signature, publicKey);
    } catch {
      // Malformed points or a missing schnorrkel marker: not a valid signature.
      return false;
    }
  };
  return attempt(message) || attempt(`<Bytes>${message}</Bytes>`);
}
