import { describe, expect, it } from "vitest";
import { toHex } from "../../src/lib/bytes.ts";
import { hexToBytes, randomAlphanumeric, sha256Hex, timingSafeEqual } from "../../src/lib/crypto.ts";

describe("crypto helpers", () => {
  it("round-trips hex and rejects what is not hex", () => {
    expect(toHex(new Uint8Array([0, 15, 255]))).toBe("000fff");
    expect(hexToBytes("000fFF")).toEqual(new Uint8Array([0, 15, 255]));
    expect(hexToBytes("abc")).toBeNull();
    expect(hexToBytes("zz")).toBeNull();
  });

  it("hashes with SHA-256 (empty body included)", async () => {
    expect(await sha256Hex("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(await sha256Hex(new TextEncoder().encode("abc"))).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  });

  it("compares equal strings as equal and anything else as different", () => {
    expect(timingSafeEqual("abcd", "abcd")).toBe(true);
    expect(timingSafeEqual("abcd", "abce")).toBe(false);
    expect(timingSafeEqual("abcd", "abc")).toBe(false);
    expect(timingSafeEqual("", "")).toBe(true);
  });

  it("draws alphanumerics uniformly, repeats allowed", () => {
    const sample = randomAlphanumeric(62 * 400);
    expect(sample).toMatch(/^[A-Za-z0-9]+$/);
    expect(sample).toHaveLength(62 * 400);
    const counts = new Map<string, number>();
    for (const c of sample) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    // Expected 400 each; modulo bias would push the first 8 characters ~3% high, and
    // chance alone stays well within ±30% at this size.
    for (const n of counts.values()) expect(Math.abs(n - 400)).toBeLessThan(120);
    expect(randomAlphanumeric(32)).not.toBe(randomAlphanumeric(32));
  });
});
