/**
 * @module Opening a sealed wallet mnemonic in tests, to prove what registration stored
 * (the Worker itself has no reason to unseal a mnemonic yet).
 */
import { openSecret } from "../../src/lib/crypto.ts";

/** Opens a sealed mnemonic; throws when the key or context is wrong. */
export async function unsealMnemonic(
  sealed: string,
  walletKeyHex: string,
  associatedData: Uint8Array,
): Promise<string> {
  return new TextDecoder().decode(await openSecret(sealed, walletKeyHex, associatedData));
}
