import { describe, expect, it } from "vitest";
import { compactUuid, expandUuid, isUuid, NAMESPACE_OID, uuid5 } from "../../src/lib/ids.ts";
import { sdkUuid5 } from "../support/chutes-cli.ts";

describe("uuid5", () => {
  it("derives the SDK's image and chute ids (upstream-sdk.md test vectors)", async () => {
    expect(await uuid5("tester/myimg:0.1")).toBe("5c302e55-41bf-5853-a2f0-e8907ba11dc6");
    expect(await uuid5("tester::chute::example")).toBe("eec3fa46-64bb-5bd7-b2df-220617800178");
  });

  it("matches RFC 4122's own example under the DNS namespace", async () => {
    // Python: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org")
    expect(await uuid5("python.org", "6ba7b810-9dad-11d1-80b4-00c04fd430c8")).toBe(
      "886313e1-3b8a-5372-9b90-0c9aee199e5d",
    );
  });

  it("hashes names as UTF-8 and marks version 5, RFC variant", async () => {
    // Python: uuid.uuid5(uuid.NAMESPACE_OID, "ünïcode/名前:1")
    expect(await uuid5("ünïcode/名前:1")).toBe("7c960a86-aa05-51ff-9a3b-cbe8adddc298");
  });

  it("agrees with the scripted CLI's own derivation (test/support)", async () => {
    for (const name of ["tester/myimg:0.1", "tester::chute::example", "ünïcode/名前:1", "alice::chute::org/Model-7B"]) {
      expect(await sdkUuid5(name)).toBe(await uuid5(name));
    }
  });

  it("refuses a namespace that is not a UUID", async () => {
    await expect(uuid5("x", "not-a-uuid")).rejects.toThrow(TypeError);
  });
});

describe("uuid forms", () => {
  it("compacts and expands", () => {
    expect(compactUuid(NAMESPACE_OID)).toBe("6ba7b8129dad11d180b400c04fd430c8");
    expect(expandUuid("6BA7B8129DAD11D180B400C04FD430C8")).toBe(NAMESPACE_OID);
    expect(expandUuid("6ba7b812")).toBeNull();
    expect(isUuid(NAMESPACE_OID)).toBe(true);
    expect(isUuid(`${NAMESPACE_OID}0`)).toBe(false);
  });
});
