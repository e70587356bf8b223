/**
 * @module Proof profiles and per-GPU-model time windows (docs/gpu-proof.md §7, §10).
 *
 * `tiny` and `small` have fixed shapes for CI, the CPU reference and benchmarks. `full`
 * is sized from the claimed memory of the device: n = 16384 (256 MiB matrices) and as many
 * as fill ~95% of it, less room for the product buffers, so a device that has less memory
 * than it claims cannot hold the working set.
 */
import type { DeviceRecord, ProfileName } from "../schemas/gpu-proof.ts";
import type { Shape } from "./engine.ts";

export const FIXED_PROFILES = {
  tiny: { n: 256, matrices: 4, iterations: 2 },
  small: { n: 512, matrices: 8, iterations: 2 },
} as const satisfies Record<string, Shape>;

export const FULL_N = 16384;
export const FULL_ITERATIONS = 3;
/** Fraction of the claimed memory the matrices must fill. */
export const FULL_FILL = 0.95;
/** Matrix-sized slots kept free: the folded-output scratch plus a cuBLASLt int32 product (4 n²) and slack. */
export const FULL_RESERVED_SLOTS = 6;

/** The shape a profile has on a given device. */
export function shapeFor(profile: ProfileName, device: Pick<DeviceRecord, "memory">): Shape {
  if (profile !== "full") return FIXED_PROFILES[profile];
  const slots = Math.floor((FULL_FILL * device.memory) / (FULL_N * FULL_N)) - FULL_RESERVED_SLOTS;
  const matrices = 2 * Math.floor(slots / 2);
  if (matrices < 2) throw new RangeError("the device's memory is too small for the full profile");
  return { n: FULL_N, matrices, iterations: FULL_ITERATIONS };
}

/** Multiply–accumulate operations of a whole proof (2 products per pair step). */
export function proofOps(shape: Shape): number {
  return 2 * shape.n ** 3 * shape.matrices * shape.iterations;
}

export interface GpuModel {
  id: string;
  /** Matches the device record's name. */
  name: RegExp;
  /** Dense int8 tensor-core peak, tera-ops per second (datasheet). */
  int8Tops: number;
}

/** The GPU models the full profile has time windows for; ids match `nodes.gpu_identifier`. */
export const GPU_MODELS: readonly GpuModel[] = [
  { id: "h200", name: /H200/, int8Tops: 1979 },
  { id: "h100_sxm", name: /H100.*(SXM|HBM3)/, int8Tops: 1979 },
  { id: "h100_nvl", name: /H100 NVL/, int8Tops: 1671 },
  { id: "h100_pcie", name: /H100.*PCIe/, int8Tops: 1513 },
  { id: "a100_80gb", name: /A100.*80GB/, int8Tops: 624 },
  { id: "l40s", name: /L40S/, int8Tops: 733 },
  { id: "rtx_4090", name: /RTX 4090/, int8Tops: 660 },
];

export function gpuModelFor(device: Pick<DeviceRecord, "name">): GpuModel | undefined {
  return GPU_MODELS.find((model) => model.name.test(device.name));
}

/**
 * Until calibrated on hardware, the full profile's estimate assumes 50% of the int8 peak
 * plus fixed costs; the window is wide on purpose (upstream settled on 0.55–1.7×).
 */
export const ASSUMED_EFFICIENCY = 0.5;
export const FIXED_COST_MS = 2000;
export const FULL_WINDOW = { low: 0.5, high: 2.0 } as const;
/** CPU-sized profiles only bound lateness: any machine may answer them quickly. */
export const FIXED_PROFILE_LIMIT_MS = { tiny: 30_000, small: 120_000 } as const;

export interface TimeWindow {
  minMs: number;
  maxMs: number;
}

export function timeWindow(profile: ProfileName, device: DeviceRecord): TimeWindow {
  if (profile !== "full") return { minMs: 0, maxMs: FIXED_PROFILE_LIMIT_MS[profile] };
  const model = gpuModelFor(device);
  if (!model) throw new RangeError(`no time window for GPU model "${device.name}"`);
  const estimateMs = (proofOps(shapeFor(profile, device)) / (ASSUMED_EFFICIENCY * model.int8Tops * 1e12)) * 1000;
  const total = estimateMs + FIXED_COST_MS;
  return { minMs: Math.floor(FULL_WINDOW.low * total), maxMs: Math.ceil(FULL_WINDOW.high * total) };
}

export type TimingVerdict = "ok" | "too_fast" | "too_late";

export function timingVerdict(window: TimeWindow, elapsedMs: number): TimingVerdict {
  if (elapsedMs < window.minMs) return "too_fast";
  if (elapsedMs > window.maxMs) return "too_late";
  return "ok";
}
