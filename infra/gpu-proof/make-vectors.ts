/**
 * @module `npm run gpu-proof:vectors`: writes src/gpu-proof/known-answers.json from the CPU
 * reference. Run it only when the specification changes on purpose (bump the domain tag
 * too): the committed file is what every implementation, CPU or GPU, is tested against.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { generateMatrix, pairsFor, runPlan, treeRoot } from "../../src/gpu-proof/engine.ts";
import { canonicalRecord, DOMAIN, payloadKey, prove, resolve } from "../../src/gpu-proof/protocol.ts";
import { toHex } from "../../src/lib/bytes.ts";
import { type ProofParams, proofParamsSchema } from "../../src/schemas/gpu-proof.ts";

const OUT = fileURLToPath(new URL("../../src/gpu-proof/known-answers.json", import.meta.url));

const INPUTS = [
  {
    name: "tiny-h100-sxm",
    params: {
      device: {
        name: "NVIDIA H100 80GB HBM3",
        uuid: "GPU-8f3e2a51-7c44-4b9e-9d0a-1e2f3a4b5c6d",
        memory: 85_520_809_984,
        major: 9,
        minor: 0,
        processors: 132,
        sxm: true,
        clock_rate: 1_980_000,
        max_threads_per_processor: 2048,
        concurrent_kernels: true,
        ecc: true,
      },
      seed: "1234567890123456789",
      profile: "tiny",
    },
  },
  {
    name: "tiny-max-seed",
    params: {
      device: {
        name: "NVIDIA H200",
        uuid: "0123456789abcdef0123456789abcdef",
        memory: 150_754_820_096,
        major: 9,
        minor: 0,
        processors: 132,
        sxm: true,
        clock_rate: 1_980_000,
        max_threads_per_processor: 2048,
        concurrent_kernels: true,
        ecc: false,
      },
      seed: "18446744073709551615",
      profile: "tiny",
    },
  },
];

function vector(name: string, raw: unknown) {
  const params: ProofParams = proofParamsSchema.parse(raw);
  const resolved = resolve(params);
  const { shape, key } = resolved;
  return prove(resolved, async (plan) => runPlan(plan)).then((proof) => ({
    name,
    params: raw,
    canonicalRecord: toHex(canonicalRecord(params.device)),
    seedMaterial: toHex(key),
    pairs: Array.from({ length: shape.iterations }, (_, t) => pairsFor(key, shape.matrices, t)),
    matrix0Head: toHex(new Uint8Array(generateMatrix(key, shape.n, 0).buffer).subarray(0, 64)),
    level0RootM0: toHex(treeRoot(new Uint8Array(generateMatrix(key, shape.n, 0).buffer))),
    commitments: proof.commitments,
    finalRoots: proof.finalRoots.map(toHex),
    payloadKeyM0: toHex(payloadKey(key, 0, proof.finalRoots[0] as Uint8Array)),
  }));
}

const vectors = await Promise.all(INPUTS.map((input) => vector(input.name, input.params)));
writeFileSync(OUT, `${JSON.stringify({ version: 1, domain: DOMAIN, vectors }, null, 2)}\n`);
console.log(`wrote ${vectors.length} vectors to ${OUT}`);
