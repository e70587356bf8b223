import { describe, expect, it } from "vitest";
import {
  ALLOWED_INCLUDE,
  COMPUTE_UNIT_HOURLY_USD,
  estimatedPrice,
  GPUS,
  gpuByKey,
  identifyGpu,
  resolveNodeSelector,
} from "../../src/services/gpus.ts";

const resolve = (input: Parameters<typeof resolveNodeSelector>[0]) => {
  const result = resolveNodeSelector(input);
  if (!result.ok) throw new Error(`${result.field}: ${result.message}`);
  return result.selector;
};

describe("the GPU table", () => {
  it("has upstream's 18 models with unique keys, priced against the h200", () => {
    expect(GPUS.map((gpu) => gpu.key)).toEqual([
      "3090",
      "4090",
      "a4000",
      "a5000",
      "a6000",
      "a6000_ada",
      "l4",
      "a10",
      "a40",
      "l40",
      "l40s",
      "a100_40gb",
      "a100_40gb_sxm",
      "a100",
      "a100_sxm",
      "h100",
      "h100_sxm",
      "h200",
    ]);
    expect(gpuByKey("h200")?.hourlyUsd).toBe(COMPUTE_UNIT_HOURLY_USD);
    expect(ALLOWED_INCLUDE.every((key) => gpuByKey(key))).toBe(true);
  });

  it("identifies devices by name, first match in table order", () => {
    expect(identifyGpu("NVIDIA H100 80GB HBM3")?.key).toBe("h100_sxm");
    expect(identifyGpu("NVIDIA H100 PCIe")?.key).toBe("h100");
    expect(identifyGpu("NVIDIA H200")?.key).toBe("h200");
    expect(identifyGpu("NVIDIA RTX A6000")?.key).toBe("a6000");
    expect(identifyGpu("NVIDIA RTX 6000 Ada Generation")?.key).toBe("a6000_ada");
    expect(identifyGpu("NVIDIA L40S")?.key).toBe("l40s");
    expect(identifyGpu("NVIDIA L40")?.key).toBe("l40");
    expect(identifyGpu("NVIDIA L4")?.key).toBe("l4");
    expect(identifyGpu("NVIDIA A100-SXM4-80GB")?.key).toBe("a100_sxm");
    expect(identifyGpu("NVIDIA A100 80GB PCIe")?.key).toBe("a100");
    expect(identifyGpu("NVIDIA A10")?.key).toBe("a10");
    expect(identifyGpu("Tesla T4")).toBeUndefined();
  });
});

describe("node selectors", () => {
  it("admits every model with enough memory by default, priced by the cheapest", () => {
    const selector = resolve({ gpu_count: 1, min_vram_gb_per_gpu: 16 });
    expect(selector.supported_gpus).toHaveLength(18);
    // a4000 at $0.24/h is the cheapest: one compute unit is about $0.24/h.
    expect(selector.compute_multiplier).toBeCloseTo(0.24 / 2.7375, 12);
    expect(selector).toMatchObject({ include: null, exclude: null, gpu_count: 1, min_vram_gb_per_gpu: 16 });
  });

  it("filters by memory, include and exclude, and scales by the GPU count", () => {
    const big = resolve({ gpu_count: 2, min_vram_gb_per_gpu: 80 });
    expect(big.supported_gpus).toEqual(["a100", "a100_sxm", "h100", "h100_sxm", "h200"]);
    expect(big.compute_multiplier).toBeCloseTo((2 * 1.0125) / 2.7375, 12);
    const chosen = resolve({
      gpu_count: 8,
      min_vram_gb_per_gpu: 48,
      include: ["H100", "h200", "l40s"],
      exclude: ["h200"],
    });
    expect(chosen).toMatchObject({
      supported_gpus: ["l40s", "h100"],
      include: ["h100", "h200", "l40s"],
      exclude: ["h200"],
    });
    expect(chosen.compute_multiplier).toBeCloseTo((8 * 0.71) / 2.7375, 12);
  });

  it("refuses unknown GPU types, includes without a common model, and selectors nothing satisfies", () => {
    expect(resolveNodeSelector({ gpu_count: 1, min_vram_gb_per_gpu: 16, include: ["b200"] })).toEqual({
      ok: false,
      field: "include",
      message: expect.stringContaining("unknown GPU type(s): b200"),
    });
    expect(resolveNodeSelector({ gpu_count: 1, min_vram_gb_per_gpu: 16, exclude: ["tpu"] })).toMatchObject({
      ok: false,
      field: "exclude",
    });
    expect(resolveNodeSelector({ gpu_count: 1, min_vram_gb_per_gpu: 16, include: ["a4000"] })).toMatchObject({
      ok: false,
      field: "include",
    });
    expect(resolveNodeSelector({ gpu_count: 1, min_vram_gb_per_gpu: 16, exclude: [...ALLOWED_INCLUDE] })).toMatchObject(
      { ok: false, field: "exclude" },
    );
    expect(resolveNodeSelector({ gpu_count: 1, min_vram_gb_per_gpu: 100, include: ["4090"] })).toMatchObject({
      ok: false,
      field: "min_vram_gb_per_gpu",
    });
  });
});

describe("estimated prices", () => {
  it("is the multiplier times the base rate, per hour and second, less the discount; no TAO yet", () => {
    const multiplier = resolve({ gpu_count: 2, min_vram_gb_per_gpu: 140 }).compute_multiplier;
    expect(estimatedPrice(multiplier, 0)).toEqual({ usd: { hour: 5.475, second: 0.0015208333 }, tao: null });
    expect(estimatedPrice(multiplier, 0.5).usd.hour).toBe(2.7375);
    expect(estimatedPrice(multiplier, 1).usd).toEqual({ hour: 0, second: 0 });
  });
});
