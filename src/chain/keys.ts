/**
 * @module The validator hotkey from its seed: its address, and signing with it (export
 * manifests). Deep imports keep util-crypto's bundle initialiser (which tries to compile
 * WASM, forbidden in workerd) out of the Worker; these paths are pure JS
 * (@scure/sr25519). The rpc chain gets the same key from its keyring.
 */
import { hexToU8a } from "@polkadot/util";
import { encodeAddress } from "@polkadot/util-crypto/address/encode";
import { sr25519PairFromSeed } from "@polkadot/util-crypto/sr25519/pair/fromSeed";
import { sr25519Sign } from "@polkadot/util-crypto/sr25519/sign";

function pairFromSeed(seedHex: string) {
  return sr25519PairFromSeed(hexToU8a(seedHex.startsWith("0x") ? seedHex : `0x${seedHex}`));
}

/** ss58 (prefix 42) of the sr25519 key derived from a 32-byte hex seed. */
export function hotkeyFromSeed(seedHex: string): string {
  return encodeAddress(pairFromSeed(seedHex).publicKey, 42);
}

export interface HotkeySigner {
  /** ss58 (prefix 42). */
  readonly hotkey: string;
  /** sr25519 (signing context `substrate`, as substrate-interface signs) of the bytes. */
  sign(message: Uint8Array): Uint8Array;
}

export function signerFromSeed(seedHex: string): HotkeySigner {
  const pair = pairFromSeed(seedHex);
  return {
    hotkey: encodeAddress(pair.publicKey, 42),
    sign: (message) => sr25519Sign(message, pair),
  };
}
