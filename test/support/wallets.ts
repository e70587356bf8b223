/**
 * @module Opening a sealed wallet mnemonic in tests, to prove what registration stored:
 * the inverse of the app layer in src/services/wallets.ts (the Worker itself has no
 * reason to unseal yet). Web-standard APIs only.
 */

const bytes = (hex: string) => Uint8Array.from(hex.match(/../g) ?? [], (pair) => Number.parseInt(pair, 16));

/** AES-256-GCM-opens `v1:{iv}:{ciphertext}`; throws when the key or context is wrong. */
export async function unsealMnemonic(
  sealed: string,
  walletKeyHex: string,
  associatedData: Uint8Array,
): Promise<string> {
  const [version, iv, data] = sealed.split(":");
  if (version !== "v1" || !iv || !data) throw new Error(`not a sealed mnemonic: ${sealed.slice(0, 12)}…`);
  const key = await crypto.subtle.importKey("raw", bytes(walletKeyHex), "AES-GCM", false, ["decrypt"]);
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: bytes(iv), additionalData: new Uint8Array(associatedData) },
    key,
    bytes(data),
  );
  return new TextDecoder().decode(plain);
}
