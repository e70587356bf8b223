/**
 * @module Incremental SHA-256 of a whole export file, behind one small interface so each
 * runtime uses its fastest implementation: workerd's native `crypto.DigestStream`
 * (src/jobs/export-invocations.ts), Node's `node:crypto` (the verifier CLI, the
 * benchmark), and pure-JS @noble/hashes anywhere else. WebCrypto's `digest` has no
 * incremental form, so it cannot hash a file that is never held in memory.
 */
import { sha256 } from "@noble/hashes/sha2";

export interface Sha256Stream {
  /** The bytes may be reused by the caller once the returned promise (if any) settles. */
  update(bytes: Uint8Array): void | Promise<void>;
  digest(): Promise<Uint8Array>;
}

export type Sha256Factory = () => Sha256Stream;

export const nobleSha256: Sha256Factory = () => {
  const hash = sha256.create();
  return {
    update(bytes) {
      hash.update(bytes);
    },
    digest: async () => hash.digest(),
  };
};
