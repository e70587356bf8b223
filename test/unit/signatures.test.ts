import { describe, expect, it } from "vitest";
import { hotkeyMessage } from "../../src/lib/signatures.ts";
import { isSs58Address, ss58PublicKey, verifySr25519 } from "../../src/lib/sr25519.ts";
import { hotkeyFromSeed, pythonJsonDumps, randomHotkey, signText } from "../support/chutes-cli.ts";

// The well-known development seed of //Alice (its address is public knowledge).
const ALICE = hotkeyFromSeed("e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a");

describe("ss58 addresses", () => {
  it("derives Alice's address from her seed as substrate-interface does", () => {
    expect(ALICE.ss58).toBe("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY");
    expect(ss58PublicKey(ALICE.ss58)).toEqual(ALICE.publicKey);
  });

  it("rejects malformed addresses and bad checksums", () => {
    expect(isSs58Address("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ")).toBe(false);
    expect(isSs58Address("not an address")).toBe(false);
    expect(isSs58Address("")).toBe(false);
    expect(isSs58Address("0x1234")).toBe(false);
  });
});

describe("sr25519 verification", () => {
  const message = hotkeyMessage(ALICE.ss58, "1700000000", "api_keys");

  it("builds the signed string as hotkey:nonce:payload", () => {
    expect(message).toBe(`${ALICE.ss58}:1700000000:api_keys`);
  });

  it("accepts a signature of the message, in either hex case", () => {
    const signature = signText(ALICE, message);
    expect(signature).toMatch(/^[0-9a-f]{128}$/);
    expect(verifySr25519(message, signature, ALICE.publicKey)).toBe(true);
    expect(verifySr25519(message, signature.toUpperCase(), ALICE.publicKey)).toBe(true);
  });

  it("accepts a signature of the <Bytes>-wrapped message (polkadot.js extensions)", () => {
    const wrapped = signText(ALICE, `<Bytes>${message}</Bytes>`);
    expect(verifySr25519(message, wrapped, ALICE.publicKey)).toBe(true);
  });

  it("rejects another key's signature, another message, and malformed signatures", () => {
    const signature = signText(ALICE, message);
    expect(verifySr25519(message, signText(randomHotkey(), message), ALICE.publicKey)).toBe(false);
    expect(verifySr25519(`${message}x`, signature, ALICE.publicKey)).toBe(false);
    expect(verifySr25519(message, `0x${signature}`, ALICE.publicKey)).toBe(false);
    expect(verifySr25519(message, signature.slice(2), ALICE.publicKey)).toBe(false);
    expect(verifySr25519(message, "00".repeat(64), ALICE.publicKey)).toBe(false);
    // The schnorrkel marker bit cleared: the library throws, verification says no.
    const unmarked =
      signature.slice(0, 126) + (Number.parseInt(signature.slice(126), 16) & 0x7f).toString(16).padStart(2, "0");
    expect(verifySr25519(message, unmarked, ALICE.publicKey)).toBe(false);
  });
});

describe("the CLI body serialisation used by the tests", () => {
  it("matches Python json.dumps (spaced separators, ASCII escapes)", () => {
    expect(pythonJsonDumps({ username: "alice", coldkey: "5Fé", n: [1, true, null] })).toBe(
      '{"username": "alice", "coldkey": "5F\\u00e9", "n": [1, true, null]}',
    );
  });
});
