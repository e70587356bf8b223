import { describe, expect, it } from "vitest";
import { checkWeightsRequest, ipToString, raoToTao, toAxon, u16ToUnit } from "../../src/chain/convert.ts";
import { ChainError } from "../../src/chain/types.ts";

describe("chain conversions", () => {
  it("formats the chain's u128 addresses", () => {
    expect(ipToString(0xc0a8_0a01n, 4)).toBe("192.168.10.1");
    expect(ipToString(0x0100_0000n, 4)).toBe("1.0.0.0");
    expect(ipToString(0n, 4)).toBeNull();
    expect(ipToString(1n << 40n, 4)).toBeNull();
    expect(ipToString(0x2001_0db8_0000_0000_0000_0000_0000_0001n, 6)).toBe("2001:db8::1");
    expect(ipToString(1n, 6)).toBe("::1");
    expect(ipToString(0x2001_0db8_0000_0001_0000_0000_0000_0001n, 6)).toBe("2001:db8:0:1::1");
    expect(ipToString(0x0001_0002_0003_0004_0005_0006_0007_0008n, 6)).toBe("1:2:3:4:5:6:7:8");
    expect(ipToString(5n, 5)).toBeNull();
  });

  it("treats the all-zero AxonInfo as no axon", () => {
    expect(toAxon({ block: 0, version: 0, ip: 0n, port: 0, ipType: 0, protocol: 0 })).toBeNull();
    expect(toAxon({ block: 3, version: 1, ip: 0x7f00_0001n, port: 80, ipType: 4, protocol: 4 })).toEqual({
      ip: "127.0.0.1",
      port: 80,
      ipType: 4,
      protocol: 4,
      version: 1,
      block: 3,
    });
  });

  it("converts rao and u16 ratios", () => {
    expect(raoToTao(1_500_000_000n)).toBe(1.5);
    expect(raoToTao(1n)).toBe(1e-9);
    expect(raoToTao(18_446_744_073_709_551_615n)).toBeCloseTo(18_446_744_073.709_55, 4);
    expect(u16ToUnit(65_535)).toBe(1);
    expect(u16ToUnit(0)).toBe(0);
  });

  it("refuses weight vectors the chain would reject", () => {
    const ok = { netuid: 64, uids: [0, 5], weights: [65_535, 1], versionKey: 69_420 };
    expect(() => checkWeightsRequest(ok)).not.toThrow();
    for (const bad of [
      { ...ok, netuid: 70_000 },
      { ...ok, uids: [0] },
      { ...ok, uids: [1, 1] },
      { ...ok, weights: [1, -1] },
      { ...ok, weights: [1, 1.5] },
      { ...ok, versionKey: -1 },
    ]) {
      expect(() => checkWeightsRequest(bad), JSON.stringify(bad)).toThrow(ChainError);
    }
  });
});
