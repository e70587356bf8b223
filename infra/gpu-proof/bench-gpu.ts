/**
 * @module `npm run bench:gpu` (needs a GPU and `npm run gpu:build`): on GPU 0,
 * 1. the sidecar's GEMM benchmark: our int8 tensor-core product against the GPU's int8
 *    dense peak and against cuBLASLt's int8 GEMM, measured in the same run;
 * 2. the known-answer self-test through the sidecar (bit-exact with the CPU reference);
 * 3. a full production-profile proof (sized from this GPU's memory) and one verifier
 *    cone, timed, with the profile's time window for this GPU model.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { gpuDevice, listGpus } from "../../gpu-agent/src/engines.ts";
import { gpuModelFor, proofOps, timeWindow, timingVerdict } from "../../src/gpu-proof/profiles.ts";
import { prove, randomSeed, resolve, verifyProof } from "../../src/gpu-proof/protocol.ts";
import { selfTest } from "../../src/gpu-proof/vectors.ts";
import { deviceRecordSchema } from "../../src/schemas/gpu-proof.ts";

const SIDECAR = fileURLToPath(new URL("../../gpu-agent/native/build/chutes-gpu-proof", import.meta.url));
const gpus = await listGpus(SIDECAR);
const gpu = gpus?.[0];
if (!gpu) {
  console.error(`no GPU visible through ${SIDECAR} (build it with npm run gpu:build on a machine with a GPU)`);
  process.exit(1);
}
const n = process.env.BENCH_N ?? "16384";
console.log(execFileSync(SIDECAR, ["bench", "--device", "0", "--n", n], { encoding: "utf8" }));

const device = gpuDevice(SIDECAR, gpu);
try {
  const report = await selfTest(device.execute);
  console.log(`self-test through the sidecar: ${report.passed ? "passed" : `FAILED ${report.failures.join("; ")}`}`);
  if (!report.passed) process.exit(1);
  const record = deviceRecordSchema.parse({
    name: gpu.name,
    uuid: gpu.uuid,
    memory: gpu.memory,
    major: gpu.major,
    minor: gpu.minor,
    processors: gpu.processors,
    sxm: /SXM|HBM3|H200/.test(gpu.name),
    clock_rate: gpu.clock_rate,
    max_threads_per_processor: 2048,
    concurrent_kernels: true,
    ecc: true,
  });
  const resolved = resolve({ device: record, seed: randomSeed(), profile: "full" });
  const { shape } = resolved;
  console.log(
    `full profile on ${gpu.name}: n = ${shape.n}, ${shape.matrices} matrices × ${shape.iterations} iterations`,
  );
  let started = performance.now();
  const proof = await prove(resolved, device.execute);
  const proveMs = performance.now() - started;
  started = performance.now();
  const check = await verifyProof(resolved, proof.commitments, 0, device.execute);
  const verifyMs = performance.now() - started;
  console.log(
    `prove: ${(proveMs / 1000).toFixed(2)} s (${(proofOps(shape) / proveMs / 1e9).toFixed(0)} TOPS effective); ` +
      `verify one cone: ${(verifyMs / 1000).toFixed(2)} s (${check.checked} states, valid: ${check.valid}); ` +
      `verify/prove ${(verifyMs / proveMs).toFixed(4)}`,
  );
  if (gpuModelFor(record)) {
    const window = timeWindow("full", record);
    console.log(
      `time window for ${gpuModelFor(record)?.id}: ${window.minMs}–${window.maxMs} ms → ${timingVerdict(window, proveMs)}`,
    );
  }
} finally {
  await device.close();
}
