/**
 * @module The committed known-answer vectors (known-answers.json) and the self-test that
 * runs them through any executor: the CPU reference in tests and CPU mode, the CUDA
 * sidecar in GPU mode. An agent whose self-test fails refuses work.
 */

import { toHex } from "../lib/bytes.ts";
import type { ProofParams } from "../schemas/gpu-proof.ts";
import { proofParamsSchema } from "../schemas/gpu-proof.ts";
import type { Executor } from "./engine.ts";
import vectors from "./known-answers.json" with { type: "json" };
import { prove, resolve, verifyProof } from "./protocol.ts";

export interface KnownAnswer {
  name: string;
  params: ProofParams;
  canonicalRecord: string;
  seedMaterial: string;
  pairs: [number, number][][];
  matrix0Head: string;
  level0RootM0: string;
  commitments: string[];
  finalRoots: string[];
  payloadKeyM0: string;
}

export const KNOWN_ANSWERS: KnownAnswer[] = vectors.vectors.map((v) => ({
  ...v,
  params: proofParamsSchema.parse(v.params),
  pairs: v.pairs as [number, number][][],
}));

export interface SelfTestReport {
  passed: boolean;
  vectors: number;
  failures: string[];
}

/** Proves every vector and verifies one cone of each; any difference fails the test. */
export async function selfTest(execute: Executor): Promise<SelfTestReport> {
  const failures: string[] = [];
  for (const vector of KNOWN_ANSWERS) {
    try {
      const resolved = resolve(vector.params);
      const proof = await prove(resolved, execute);
      if (proof.commitments.join() !== vector.commitments.join()) failures.push(`${vector.name}: commitments differ`);
      if (proof.finalRoots.map(toHex).join() !== vector.finalRoots.join())
        failures.push(`${vector.name}: roots differ`);
      const check = await verifyProof(resolved, vector.commitments, resolved.shape.matrices - 1, execute);
      if (!check.valid) failures.push(`${vector.name}: the verifier rejected the known proof`);
    } catch (error) {
      failures.push(`${vector.name}: ${(error as Error).message}`);
    }
  }
  return { passed: failures.length === 0, vectors: KNOWN_ANSWERS.length, failures };
}
