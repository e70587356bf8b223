/**
 * The CPU reference of the GPU proof against the committed known-answer vectors and
 * RFC 8439, and its rejections: wrong, short or malformed proofs, bad device records and
 * seeds, late or early answers.
 */
import { describe, expect, it } from "vitest";
import { chachaFill, keyWords } from "../../src/gpu-proof/chacha20.ts";
import { conePlan, cpuExecutor, generateMatrix, pairsFor, provePlan, treeRoot } from "../../src/gpu-proof/engine.ts";
import { FIXED_PROFILES, shapeFor, timeWindow, timingVerdict } from "../../src/gpu-proof/profiles.ts";
import {
  canonicalRecord,
  decryptWithProof,
  encryptForDevice,
  ProofShapeError,
  payloadKey,
  prove,
  resolve,
  verifyProof,
} from "../../src/gpu-proof/protocol.ts";
import { KNOWN_ANSWERS, selfTest } from "../../src/gpu-proof/vectors.ts";
import { fromHex, toHex } from "../../src/lib/bytes.ts";
import { deviceRecordSchema, proofParamsSchema, seedSchema } from "../../src/schemas/gpu-proof.ts";
import { judgeProofResponse } from "../../src/services/gpu-proof.ts";

const [first, second] = KNOWN_ANSWERS;
if (!first || !second) throw new Error("known-answers.json must hold at least two vectors");

describe("ChaCha20 (RFC 8439 §2.3.2)", () => {
  it("produces the RFC's keystream block", () => {
    const key = keyWords(Uint8Array.from({ length: 32 }, (_, i) => i));
    const out = new Uint8Array(64);
    chachaFill(key, 0x09000000, 0x4a000000, 0, 1, out);
    expect(toHex(out)).toBe(
      "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4ed2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e",
    );
  });
});

describe("known-answer vectors", () => {
  it.each(KNOWN_ANSWERS.map((v) => [v.name, v] as const))("%s: every intermediate value matches", async (_, v) => {
    const resolved = resolve(v.params);
    const { shape, key } = resolved;
    expect(toHex(canonicalRecord(v.params.device))).toBe(v.canonicalRecord);
    expect(toHex(key)).toBe(v.seedMaterial);
    expect(Array.from({ length: shape.iterations }, (_, t) => pairsFor(key, shape.matrices, t))).toEqual(v.pairs);
    const m0 = new Uint8Array(generateMatrix(key, shape.n, 0).buffer);
    expect(toHex(m0.subarray(0, 64))).toBe(v.matrix0Head);
    expect(toHex(treeRoot(m0))).toBe(v.level0RootM0);
    const proof = await prove(resolved, cpuExecutor);
    expect(proof.commitments).toEqual(v.commitments);
    expect(proof.finalRoots.map(toHex)).toEqual(v.finalRoots);
    expect(toHex(payloadKey(key, 0, fromHex(v.finalRoots[0] as string)))).toBe(v.payloadKeyM0);
  });

  it("the verifier accepts the vectors' proofs at every check index", async () => {
    const resolved = resolve(first.params);
    for (let m = 0; m < resolved.shape.matrices; m++) {
      const outcome = await verifyProof(resolved, first.commitments, m, cpuExecutor);
      expect(outcome).toMatchObject({ valid: true, check_index: m });
      expect(outcome.checked).toBeGreaterThan(0);
    }
  });

  it("the self-test passes on the CPU reference", async () => {
    expect(await selfTest(cpuExecutor)).toEqual({ passed: true, vectors: KNOWN_ANSWERS.length, failures: [] });
  });

  it("the self-test fails on an executor that computes anything else", async () => {
    const report = await selfTest(async (plan) =>
      (await cpuExecutor(plan)).map((r, i) => (i === 0 ? { ...r, root: new Uint8Array(32) } : r)),
    );
    expect(report.passed).toBe(false);
    expect(report.failures.length).toBeGreaterThan(0);
  });
});

describe("the verifier rejects", () => {
  const resolved = resolve(first.params);

  it("a proof with one wrong commitment in the checked cone", async () => {
    const tampered = [...first.commitments];
    const { t, m } = { t: resolved.shape.iterations - 1, m: 2 };
    const index = t * resolved.shape.matrices + m;
    tampered[index] = (tampered[index] as string).replace(/^./, (c) => (c === "0" ? "1" : "0"));
    const outcome = await verifyProof(resolved, tampered, m, cpuExecutor);
    expect(outcome).toMatchObject({ valid: false, check_index: m, mismatch: { t, m } });
  });

  it("another device's or seed's proof", async () => {
    const other = resolve({ ...first.params, seed: first.params.seed + 1n });
    expect((await verifyProof(other, first.commitments, 0, cpuExecutor)).valid).toBe(false);
    expect((await verifyProof(resolve(second.params), first.commitments, 1, cpuExecutor)).valid).toBe(false);
  });

  it("proofs of the wrong length or shape, and check indexes out of range, with clear errors", async () => {
    await expect(verifyProof(resolved, first.commitments.slice(1), 0, cpuExecutor)).rejects.toThrow(
      /has 7 commitments; this profile needs 8 \(2 iterations × 4 matrices\)/,
    );
    await expect(verifyProof(resolved, [...first.commitments, "00".repeat(32)], 0, cpuExecutor)).rejects.toThrow(
      ProofShapeError,
    );
    const upper = first.commitments.map((c, i) => (i === 0 ? c.toUpperCase() : c));
    await expect(verifyProof(resolved, upper, 0, cpuExecutor)).rejects.toThrow(/64 lower-case hex/);
    await expect(verifyProof(resolved, first.commitments, 4, cpuExecutor)).rejects.toThrow(/between 0 and 3/);
  });
});

describe("plans", () => {
  it("a verifier's cone is at most 2^(T+1) − 2 products and a subset of the prover's steps", () => {
    const key = fromHex(first.seedMaterial);
    const shape = { n: 64, matrices: 64, iterations: 3 };
    const all = provePlan(key, shape);
    const allSteps = new Set(all.steps.map((s) => `${s.t}:${s.a}:${s.b}`));
    for (const m of [0, 17, 63]) {
      const cone = conePlan(key, shape, m);
      expect(2 * cone.steps.length).toBeLessThanOrEqual(2 ** (shape.iterations + 1) - 2);
      for (const s of cone.steps) expect(allSteps.has(`${s.t}:${s.a}:${s.b}`)).toBe(true);
      expect(cone.steps.at(-1)).toMatchObject({ t: shape.iterations - 1 });
    }
    expect(all.steps).toHaveLength((shape.iterations * shape.matrices) / 2);
  });
});

describe("payload cipher", () => {
  it("only the holder of the finished proof opens what the validator sealed", async () => {
    const resolved = resolve(first.params);
    const sealed = await encryptForDevice(resolved, "secret is 42", 3, cpuExecutor);
    const proof = await prove(resolved, cpuExecutor);
    expect(await decryptWithProof(resolved, proof, sealed)).toBe("secret is 42");
    const otherSeed = resolve({ ...first.params, seed: 7n });
    expect(await decryptWithProof(otherSeed, await prove(otherSeed, cpuExecutor), sealed)).toBeNull();
    const bytes = atob(sealed);
    const flipped = btoa(bytes.slice(0, -1) + String.fromCharCode(bytes.charCodeAt(bytes.length - 1) ^ 1));
    expect(await decryptWithProof(resolved, proof, flipped)).toBeNull();
    expect(await decryptWithProof(resolved, proof, "not base64!")).toBeNull();
  });
});

describe("input validation", () => {
  const device = first.params.device;

  it("accepts seeds up to 2^64 − 1 and rejects anything else with a clear message", () => {
    expect(seedSchema.parse("18446744073709551615")).toBe(18446744073709551615n);
    expect(seedSchema.parse("0")).toBe(0n);
    const tooBig = seedSchema.safeParse("18446744073709551616");
    expect(tooBig.success).toBe(false);
    expect(tooBig.error?.issues[0]?.message).toMatch(/at most 2\^64 − 1/);
    for (const bad of ["-1", "01", "1e3", "1.5", "", "123456789012345678901"]) {
      expect(seedSchema.safeParse(bad).success, bad).toBe(false);
    }
    expect(proofParamsSchema.safeParse({ device, seed: 5, profile: "tiny" }).success).toBe(false);
  });

  it("normalises GPU UUIDs and rejects malformed device records field by field", () => {
    expect(deviceRecordSchema.parse({ ...device, uuid: "GPU-8F3E2A51-7C44-4B9E-9D0A-1E2F3A4B5C6D" }).uuid).toBe(
      "8f3e2a517c444b9e9d0a1e2f3a4b5c6d",
    );
    const cases: [Record<string, unknown>, string][] = [
      [{ ...device, uuid: "xyz" }, "uuid"],
      [{ ...device, name: "N".repeat(64) }, "name"],
      [{ ...device, name: "" }, "name"],
      [{ ...device, memory: -1 }, "memory"],
      [{ ...device, memory: 1.5 }, "memory"],
      [{ ...device, clock_rate: 1980.5 }, "clock_rate"],
      [{ ...device, processors: 0 }, "processors"],
      [{ ...device, sxm: "yes" }, "sxm"],
      [{ ...device, extra: 1 }, ""],
    ];
    for (const [record, field] of cases) {
      const result = deviceRecordSchema.safeParse(record);
      expect(result.success, field).toBe(false);
      if (field) expect(result.error?.issues[0]?.path).toEqual([field]);
    }
    const { ecc: _ecc, ...missing } = device;
    expect(deviceRecordSchema.safeParse(missing).error?.issues[0]?.path).toEqual(["ecc"]);
  });
});

describe("profiles and time windows", () => {
  it("sizes the full profile from the claimed memory (~95%, an even matrix count)", () => {
    const h100 = shapeFor("full", first.params.device);
    expect(h100).toEqual({ n: 16384, matrices: 296, iterations: 3 });
    expect((h100.matrices + 1) * h100.n ** 2).toBeLessThan(0.95 * first.params.device.memory);
    expect(shapeFor("full", second.params.device).matrices).toBeGreaterThan(h100.matrices);
    expect(() => shapeFor("full", { memory: 2 ** 30 })).toThrow(/too small/);
    expect(shapeFor("tiny", first.params.device)).toEqual(FIXED_PROFILES.tiny);
  });

  it("rejects late answers, and too-fast ones for GPU-sized profiles", () => {
    const window = timeWindow("full", first.params.device);
    expect(window.minMs).toBeGreaterThan(0);
    expect(timingVerdict(window, window.minMs - 1)).toBe("too_fast");
    expect(timingVerdict(window, (window.minMs + window.maxMs) / 2)).toBe("ok");
    expect(timingVerdict(window, window.maxMs + 1)).toBe("too_late");
    const tiny = timeWindow("tiny", first.params.device);
    expect(timingVerdict(tiny, 0)).toBe("ok");
    expect(timingVerdict(tiny, tiny.maxMs + 1)).toBe("too_late");
    expect(() => timeWindow("full", { ...first.params.device, name: "Some Other GPU" })).toThrow(/no time window/);
  });
});

describe("judging a miner's answer (no GPU needed)", () => {
  const challenge = {
    seed: String(first.params.seed),
    profile: "tiny" as const,
    devices: [{ device: first.params.device, plaintext: "p1", encryptJobId: "j1" }],
  };
  const uuid = first.params.device.uuid;
  const answer = { plaintext: "p1", commitments: first.commitments };

  it("accepts a complete answer in time and names what is wrong otherwise", () => {
    expect(judgeProofResponse(challenge, { [uuid]: answer }, 1000)).toEqual({ ok: true });
    expect(judgeProofResponse(challenge, {}, 1000)).toMatchObject({ ok: false, reason: "no answer for this GPU" });
    expect(judgeProofResponse(challenge, { [uuid]: { ...answer, plaintext: "p2" } }, 1000)).toMatchObject({
      reason: "wrong plaintext",
    });
    const short = { [uuid]: { ...answer, commitments: answer.commitments.slice(2) } };
    expect(judgeProofResponse(challenge, short, 1000)).toMatchObject({ reason: expect.stringMatching(/needs 8/) });
    expect(judgeProofResponse(challenge, { [uuid]: answer }, 30_001)).toMatchObject({ reason: "answered too late" });
  });
});
