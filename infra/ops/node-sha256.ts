/**
 * @module Incremental SHA-256 from `node:crypto` for Node-side tools (the export verifier,
 * the export benchmark): several times the pure-JS fallback's speed on large files.
 */
import { createHash } from "node:crypto";
import type { Sha256Factory } from "../../src/exports/sha256.ts";

export const nodeSha256: Sha256Factory = () => {
  const hash = createHash("sha256");
  return {
    update(bytes) {
      hash.update(bytes);
    },
    digest: async () => new Uint8Array(hash.digest()),
  };
};
