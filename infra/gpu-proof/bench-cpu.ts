/**
 * @module `npm run bench:gpu-proof`: the CPU reference's prover and verifier on the `tiny`
 * and `small` profiles, against baselines measured in the same run on the same core:
 * a plain JavaScript multiply–accumulate loop over the same int8 data (what the product
 * costs at best in JS) and SHA-256 over the same number of bytes the tree hash reads.
 */
import { sha256 } from "@noble/hashes/sha2";
import { cpuExecutor } from "../../src/gpu-proof/engine.ts";
import { FIXED_PROFILES, proofOps } from "../../src/gpu-proof/profiles.ts";
import { prove, resolve, verifyProof } from "../../src/gpu-proof/protocol.ts";
import { KNOWN_ANSWERS } from "../../src/gpu-proof/vectors.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const device = KNOWN_ANSWERS[0]?.params.device;
if (!device) throw new Error("no vectors");

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function timed(fn: () => Promise<unknown> | unknown): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return median(times);
}

/** n² dot products of length n over int8 rows: the product's arithmetic with nothing else. */
function plainMacLoop(n: number): number {
  const x = new Int8Array(n * n).map((_, i) => (i * 31) & 0x7f);
  let sink = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += (x[i * n + k] as number) * (x[j * n + k] as number);
      sink ^= acc | 0;
    }
  }
  return sink;
}

console.log(`CPU reference, Node ${process.version}, median of ${ROUNDS} rounds, one core\n`);
const macMs = await timed(() => plainMacLoop(256));
const macRate = 256 ** 3 / macMs / 1e6;
const shaBytes = new Uint8Array(8 << 20);
const shaMs = await timed(() => sha256(shaBytes));
const shaRate = shaBytes.length / shaMs / 1e3;
console.log(
  `baseline: plain JS int8 multiply–accumulate, n=256: ${macMs.toFixed(1)} ms (${macRate.toFixed(2)} GMAC/s)`,
);
console.log(`baseline: SHA-256 (@noble/hashes) over 8 MiB: ${shaMs.toFixed(1)} ms (${shaRate.toFixed(0)} MB/s)\n`);

console.log(
  "| profile | n | matrices × iterations | prove ms | verify ms (one cone) | verify/prove | prover GMAC/s | vs plain loop |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
for (const name of ["tiny", "small"] as const) {
  const params = { device, seed: 42n, profile: name };
  const resolved = resolve(params);
  const shape = FIXED_PROFILES[name];
  let commitments: string[] = [];
  const proveMs = await timed(async () => {
    commitments = (await prove(resolved, cpuExecutor)).commitments;
  });
  const verifyMs = await timed(async () => {
    const outcome = await verifyProof(resolved, commitments, shape.matrices - 1, cpuExecutor);
    if (!outcome.valid) throw new Error("the verifier rejected its own prover");
  });
  const gmac = proofOps(shape) / 2 / proveMs / 1e6;
  console.log(
    `| ${name} | ${shape.n} | ${shape.matrices} × ${shape.iterations} | ${proveMs.toFixed(0)} | ${verifyMs.toFixed(0)} | ${(verifyMs / proveMs).toFixed(2)} | ${gmac.toFixed(2)} | ${(gmac / macRate).toFixed(2)}× |`,
  );
}
