/**
 * @module The supported-GPU table and what is derived from it: which GPU models a chute's
 * node selector admits, its compute multiplier and its estimated price (the catalogue),
 * and which model a device name reports (the miner plane validates nodes against it).
 *
 * The figures are upstream's (upstream-data-model.md §7.3). `hourlyUsd` drives pricing:
 * the multiplier of a model is its rate over the h200's, the base rate of one compute
 * unit-hour. Pure data and functions, shared by the Worker and Node-side code.
 */

export interface GpuSpec {
  /** The short name node selectors and nodes use (`h100_sxm`). */
  key: string;
  /** Found (first match in table order, case-sensitive) in the device name a miner reports. */
  namePattern: RegExp;
  memoryGb: number;
  major: number;
  minor: number;
  /** Streaming multiprocessors. */
  processors: number;
  baseClockMhz: number;
  boostClockMhz: number;
  maxThreadsPerProcessor: number;
  hourlyUsd: number;
  sxm: boolean;
  ecc: boolean;
}

const gpu = (
  key: string,
  namePattern: RegExp,
  memoryGb: number,
  [major, minor]: [number, number],
  processors: number,
  [baseClockMhz, boostClockMhz]: [number, number],
  maxThreadsPerProcessor: number,
  hourlyUsd: number,
  flags: { sxm?: boolean; ecc?: boolean } = {},
): GpuSpec => ({
  key,
  namePattern,
  memoryGb,
  major,
  minor,
  processors,
  baseClockMhz,
  boostClockMhz,
  maxThreadsPerProcessor,
  hourlyUsd,
  sxm: flags.sxm ?? false,
  ecc: flags.ecc ?? true,
});

/** In upstream's order, which decides device-name matching (first match wins). */
export const GPUS: readonly GpuSpec[] = [
  gpu("3090", /RTX 3090/, 24, [8, 6], 82, [1395, 1695], 1536, 0.3225, { ecc: false }),
  gpu("4090", /RTX 4090/, 24, [8, 9], 128, [2235, 2520], 1536, 0.5175, { ecc: false }),
  gpu("a4000", /RTX A4000/, 16, [8, 6], 48, [765, 1560], 1536, 0.24),
  gpu("a5000", /RTX A5000/, 24, [8, 6], 64, [1170, 1695], 1536, 0.27, { ecc: false }),
  gpu("a6000", /RTX A6000(?! Ada)/, 48, [8, 6], 84, [1455, 1860], 1536, 0.57),
  gpu("a6000_ada", /RTX 6000 Ada/, 48, [8, 9], 142, [915, 2505], 1536, 0.66),
  gpu("l4", /L4(?!0)/, 24, [8, 9], 58, [795, 2040], 1536, 0.3225),
  gpu("a10", /A10(?!0)/, 24, [8, 6], 72, [1110, 1710], 1536, 0.5625),
  gpu("a40", /A40/, 48, [8, 6], 84, [1305, 1740], 1536, 0.2925),
  gpu("l40", /L40(?!S)/, 48, [8, 9], 142, [735, 2490], 1536, 0.6),
  gpu("l40s", /L40S/, 48, [8, 9], 142, [1065, 2520], 1536, 0.71),
  gpu("a100_40gb", /A100.?PCIE.?40GB/, 40, [8, 0], 108, [1065, 1410], 2048, 0.9375),
  gpu("a100_40gb_sxm", /A100.?SXM.?.?40GB/, 40, [8, 0], 108, [1065, 1410], 2048, 0.9375, { sxm: true }),
  gpu("a100", /A100.?80GB.?PCIe/, 80, [8, 0], 108, [1065, 1410], 2048, 1.0125),
  gpu("a100_sxm", /A100.?SXM.?.?80GB/, 80, [8, 0], 108, [1275, 1410], 2048, 1.0125, { sxm: true }),
  gpu("h100", /H100.*PCIe/, 80, [9, 0], 114, [1095, 1755], 2048, 1.425),
  gpu("h100_sxm", /H100.*HBM3/, 80, [9, 0], 132, [1590, 1980], 2048, 1.83, { sxm: true }),
  gpu("h200", / H200/, 140, [9, 0], 132, [1590, 1980], 2048, 2.7375, { sxm: true }),
];

const BY_KEY = new Map(GPUS.map((spec) => [spec.key, spec]));

/** USD per hour of one compute unit (the h200's rate): multiplier 1.0. */
export const COMPUTE_UNIT_HOURLY_USD = 2.7375;

/**
 * Node selectors must admit at least one of these (upstream's `ALLOWED_INCLUDE`): the
 * models the network has enough of to serve a chute that names no others.
 */
export const ALLOWED_INCLUDE: readonly string[] = ["4090", "a6000", "l40s", "a100", "h100", "h100_sxm", "h200"];

export function gpuByKey(key: string): GpuSpec | undefined {
  return BY_KEY.get(key);
}

/** The model a device name reports (`NVIDIA H100 80GB HBM3` → h100_sxm), or undefined. */
export function identifyGpu(deviceName: string): GpuSpec | undefined {
  return GPUS.find((spec) => spec.namePattern.test(deviceName));
}

/** A node selector as the SDK sends it (null lists mean "no constraint"). */
export interface NodeSelectorInput {
  gpu_count: number;
  min_vram_gb_per_gpu: number;
  include?: string[] | null;
  exclude?: string[] | null;
}

/** A node selector as stored: the input plus what the table derives from it (upstream's shape). */
export interface NodeSelector {
  gpu_count: number;
  min_vram_gb_per_gpu: number;
  include: string[] | null;
  exclude: string[] | null;
  supported_gpus: string[];
  compute_multiplier: number;
}

export type NodeSelectorResult =
  | { ok: true; selector: NodeSelector }
  | { ok: false; field: "include" | "exclude" | "min_vram_gb_per_gpu"; message: string };

const normalise = (list: string[] | null | undefined) =>
  list == null ? null : [...new Set(list.map((key) => key.trim().toLowerCase()))];

/** Money is reported to ten decimal places, like the numeric columns. */
const round = (value: number) => Math.round(value * 1e10) / 1e10;

/**
 * Resolves a selector against the table: `supported_gpus` = (include, or every model) −
 * exclude, with at least `min_vram_gb_per_gpu` of memory, in table order;
 * `compute_multiplier` = gpu_count × the cheapest supported model's multiplier.
 */
export function resolveNodeSelector(input: NodeSelectorInput): NodeSelectorResult {
  const include = normalise(input.include);
  const exclude = normalise(input.exclude);
  for (const [field, list] of [
    ["include", include],
    ["exclude", exclude],
  ] as const) {
    const unknown = list?.filter((key) => !BY_KEY.has(key)) ?? [];
    if (unknown.length > 0) {
      return { ok: false, field, message: `unknown GPU type(s): ${unknown.join(", ")} (see GET /nodes/supported)` };
    }
  }
  if (include && !include.some((key) => ALLOWED_INCLUDE.includes(key))) {
    return { ok: false, field: "include", message: `must include at least one of ${ALLOWED_INCLUDE.join(", ")}` };
  }
  if (exclude && ALLOWED_INCLUDE.every((key) => exclude.includes(key))) {
    return { ok: false, field: "exclude", message: `must leave at least one of ${ALLOWED_INCLUDE.join(", ")}` };
  }
  const supported = GPUS.filter(
    (spec) =>
      (include ? include.includes(spec.key) : true) &&
      !exclude?.includes(spec.key) &&
      spec.memoryGb >= input.min_vram_gb_per_gpu,
  );
  const cheapest = supported.reduce<GpuSpec | null>(
    (best, s) => (!best || s.hourlyUsd < best.hourlyUsd ? s : best),
    null,
  );
  if (!cheapest) {
    return { ok: false, field: "min_vram_gb_per_gpu", message: "No GPUs match the node selector's criteria" };
  }
  return {
    ok: true,
    selector: {
      gpu_count: input.gpu_count,
      min_vram_gb_per_gpu: input.min_vram_gb_per_gpu,
      include,
      exclude,
      supported_gpus: supported.map((spec) => spec.key),
      compute_multiplier: (input.gpu_count * cheapest.hourlyUsd) / COMPUTE_UNIT_HOURLY_USD,
    },
  };
}

export interface EstimatedPrice {
  usd: { hour: number; second: number };
  /** null until the payments work brings a TAO/USD price feed. */
  tao: null;
}

/** What an hour and a second of the chute cost at its multiplier, after its discount (0..1). */
export function estimatedPrice(computeMultiplier: number, discount: number): EstimatedPrice {
  const hour = computeMultiplier * COMPUTE_UNIT_HOURLY_USD * (1 - Math.min(Math.max(discount, 0), 1));
  return { usd: { hour: round(hour), second: round(hour / 3600) }, tao: null };
}
