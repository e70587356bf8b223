import { describe, expect, it } from "vitest";
import { generateSessionKey, openSessionKey, sealSessionKey } from "../../src/services/instance-keys.ts";

const WALLET_KEY = "2a".repeat(32);

describe("instance session keys at rest", () => {
  it("open only for the instance and app key they were sealed with", async () => {
    const key = generateSessionKey();
    const sealed = await sealSessionKey(key, WALLET_KEY, "instance-1");
    expect(sealed).not.toContain(Buffer.from(key).toString("hex"));
    expect(await openSessionKey(sealed, WALLET_KEY, "instance-1")).toEqual(key);
    await expect(openSessionKey(sealed, WALLET_KEY, "instance-2")).rejects.toThrow();
    await expect(openSessionKey(sealed, "1f".repeat(32), "instance-1")).rejects.toThrow();
    await expect(openSessionKey("v1:zz:00", WALLET_KEY, "instance-1")).rejects.toThrow("not a sealed secret");
  });

  it("are fresh per instance", () => {
    expect(generateSessionKey()).not.toEqual(generateSessionKey());
  });
});
