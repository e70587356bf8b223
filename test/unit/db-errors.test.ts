import { DrizzleQueryError } from "drizzle-orm/errors";
import { describe, expect, it } from "vitest";
import { redactedDatabaseError, uniqueViolation } from "../../src/db/errors.ts";

const driverError = (code: string, constraint?: string) =>
  Object.assign(new Error(`duplicate key value violates unique constraint "${constraint}"`), { code, constraint });

describe("database errors", () => {
  it("finds the violated unique constraint under drizzle's wrapper", () => {
    const wrapped = new DrizzleQueryError("insert …", ["x"], driverError("23505", "users_hotkey_key"));
    expect(uniqueViolation(wrapped)).toBe("users_hotkey_key");
    expect(uniqueViolation(driverError("23505", "users_username_key"))).toBe("users_username_key");
    expect(uniqueViolation(new DrizzleQueryError("insert …", [], driverError("23503")))).toBeNull();
    expect(uniqueViolation(new Error("boom"))).toBeNull();
    expect(uniqueViolation("nope")).toBeNull();
  });

  it("never carries the query parameters into what gets logged", () => {
    const secret = "pg-key-that-must-not-leak";
    const wrapped = new DrizzleQueryError("insert … pgp_sym_encrypt($1, $2)", ["sealed", secret], driverError("22000"));
    expect(wrapped.message).toContain(secret);
    const redacted = redactedDatabaseError(wrapped);
    expect(redacted.message).not.toContain(secret);
    expect(redacted.message).toContain("22000");
    const noCause = redactedDatabaseError(new DrizzleQueryError("select $1", [secret]));
    expect(noCause.message).not.toContain(secret);
    const plain = new Error("connection refused");
    expect(redactedDatabaseError(plain)).toBe(plain);
  });
});
