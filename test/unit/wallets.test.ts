import { describe, expect, it } from "vitest";
import { utf8 } from "../../src/lib/bytes.ts";
import { fingerprintHash, newFingerprint } from "../../src/services/users.ts";
import { generateWallet, sealMnemonic, walletAddress, walletAssociatedData } from "../../src/services/wallets.ts";
import { unsealMnemonic } from "../support/wallets.ts";

const KEY = "0f".repeat(32);

describe("wallets", () => {
  it("derives addresses as substrate tools do (the public development phrase)", () => {
    expect(walletAddress("bottom drive obey lake curtain smoke basket hold race lonely fit walk")).toBe(
      "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV",
    );
  });

  it("generates 24-word mnemonics with distinct prefix-42 addresses", () => {
    const a = generateWallet();
    const b = generateWallet();
    expect(a.mnemonic.split(" ")).toHaveLength(24);
    expect(a.address).toMatch(/^5[1-9A-HJ-NP-Za-km-z]{47}$/);
    expect(walletAddress(a.mnemonic)).toBe(a.address);
    expect(a.address).not.toBe(b.address);
  });

  it("seals a mnemonic so that only the key and the same row's context open it", async () => {
    const { mnemonic } = generateWallet();
    const context = walletAssociatedData("user-1", "payment");
    const sealed = await sealMnemonic(mnemonic, KEY, context);
    expect(sealed).not.toContain(mnemonic.split(" ")[0]);
    expect(await unsealMnemonic(sealed, KEY, context)).toBe(mnemonic);
    await expect(unsealMnemonic(sealed, KEY, walletAssociatedData("user-2", "payment"))).rejects.toThrow();
    await expect(unsealMnemonic(sealed, KEY, walletAssociatedData("user-1", "developer"))).rejects.toThrow();
    await expect(unsealMnemonic(sealed, "1f".repeat(32), context)).rejects.toThrow();
    expect(await sealMnemonic(mnemonic, KEY, context)).not.toBe(sealed);
    await expect(sealMnemonic(mnemonic, "abcd", utf8("x"))).rejects.toThrow(TypeError);
  });
});

describe("fingerprints", () => {
  it("are 32 alphanumerics, hashed with BLAKE2b-512", () => {
    const fingerprint = newFingerprint();
    expect(fingerprint).toMatch(/^[A-Za-z0-9]{32}$/);
    // Python: hashlib.blake2b(b"abc").hexdigest()
    expect(fingerprintHash("abc")).toMatch(/^ba80a53f981c4d0d6a2797b69f12f6e9/);
    expect(fingerprintHash("abc")).toHaveLength(128);
  });
});
