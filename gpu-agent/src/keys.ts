/**
 * @module The agent's Ed25519 identity: a PKCS#8 PEM private key on disk (mode 0600), its
 * raw public key in hex (what the API registers), and the WebCrypto signing key.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";

/** Creates a key file and returns the public key, hex. */
export function generateKeyFile(path: string): string {
  const { privateKey } = generateKeyPairSync("ed25519");
  writeFileSync(path, privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o600 });
  return publicKeyHex(readFileSync(path, "utf8"));
}

/** The raw 32-byte public key of a PEM private key, hex (the last 32 bytes of its SPKI form). */
export function publicKeyHex(pem: string): string {
  const spki = createPublicKey(createPrivateKey(pem)).export({ format: "der", type: "spki" });
  return spki.subarray(spki.length - 32).toString("hex");
}

export async function loadSigningKey(pem: string): Promise<CryptoKey> {
  const der = createPrivateKey(pem).export({ format: "der", type: "pkcs8" });
  return crypto.subtle.importKey("pkcs8", new Uint8Array(der), { name: "Ed25519" }, false, ["sign"]);
}
