/**
 * @module The validator hotkey's address from its seed. Deep imports keep util-crypto's
 * bundle initialiser (which tries to compile WASM, forbidden in workerd) out of the
 * file chain; the rpc chain gets the same address from its keyring.
 */
import { hexToU8a } from "@polkadot/util";
import { encodeAddress } from "@polkadot/util-crypto/address/encode";
import { sr25519PairFromSeed } from "@polkadot/util-crypto/sr25519/pair/fromSeed";

/** ss58 (prefix 42) of the sr25519 key derived from a 32-byte hex seed. */
export function hotkeyFromSeed(seedHex: string): string {
  const seed = hexToU8a(seedHex.startsWith("0x") ? seedHex : `0x${seedHex}`);
  return encodeAddress(sr25519PairFromSeed(seed).publicKey, 42);
}
