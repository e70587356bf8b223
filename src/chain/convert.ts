/**
 * @module Pure conversions between the chain's encodings and the platform's values:
 * u16 fixed-point ratios, u128 axon addresses, rao amounts, and the checks a weight
 * vector must pass before anything signs it. Shared by both chain implementations.
 */
import { type Axon, ChainError, type WeightsRequest } from "./types.ts";

export const U16_MAX = 65_535;
const RAO_PER_TAO = 1_000_000_000n;

/** A u16 fixed-point ratio (incentive, trust, …) as 0..1. */
export function u16ToUnit(value: number): number {
  return value / U16_MAX;
}

/** rao → TAO as a float, exact to the rao for any amount below 2^53 TAO. */
export function raoToTao(rao: bigint): number {
  return Number(rao / RAO_PER_TAO) + Number(rao % RAO_PER_TAO) / 1e9;
}

/** The chain's u128 address as text: dotted IPv4 for type 4, RFC 5952 IPv6 for type 6. */
export function ipToString(ip: bigint, ipType: number): string | null {
  if (ip === 0n) return null;
  if (ipType === 4) {
    if (ip > 0xffff_ffffn) return null;
    return [24n, 16n, 8n, 0n].map((shift) => String((ip >> shift) & 0xffn)).join(".");
  }
  if (ipType !== 6) return null;
  const groups = Array.from({ length: 8 }, (_, i) => Number((ip >> BigInt((7 - i) * 16)) & 0xffffn));
  // Compress the longest run of two or more zero groups (the first one on a tie).
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

export interface RawAxon {
  block: number;
  version: number;
  ip: bigint;
  port: number;
  ipType: number;
  protocol: number;
}

/** The chain stores an all-zero `AxonInfo` for a neuron that never served one. */
export function toAxon(raw: RawAxon): Axon | null {
  if (raw.ip === 0n && raw.port === 0 && raw.block === 0) return null;
  return {
    ip: ipToString(raw.ip, raw.ipType),
    port: raw.port,
    ipType: raw.ipType,
    protocol: raw.protocol,
    version: raw.version,
    block: raw.block,
  };
}

const isU16 = (n: number) => Number.isInteger(n) && n >= 0 && n <= U16_MAX;

/** Refuses a weight vector the chain would reject, before anything is signed. */
export function checkWeightsRequest(request: WeightsRequest): void {
  const { netuid, uids, weights, versionKey } = request;
  if (!isU16(netuid)) throw new ChainError(`netuid ${netuid} is not a u16`);
  if (uids.length !== weights.length) {
    throw new ChainError(`${uids.length} uids but ${weights.length} weights`);
  }
  if (!uids.every(isU16)) throw new ChainError("every uid must be a u16");
  if (!weights.every(isU16)) throw new ChainError("every weight must be a u16");
  if (new Set(uids).size !== uids.length) throw new ChainError("uids must be unique");
  if (!Number.isSafeInteger(versionKey) || versionKey < 0) {
    throw new ChainError("versionKey must be a non-negative safe integer");
  }
}
