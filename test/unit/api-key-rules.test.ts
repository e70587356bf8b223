import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { scopeFromPath } from "../../src/lib/auth.ts";
import { type ApiKeyGrant, hasAccess, parseApiKey } from "../../src/services/api-keys.ts";

describe("API key format", () => {
  const id = "6796130736ee4701a259fd8b888a3438";
  const user = "968189a4f0eb5a718bdb5df1197bb485";
  const secret = "2cE7YvmTpBqgxIjKVPp5aNfKb42TURN2";

  it("reads the key id and the user id (key id first, as upstream)", () => {
    expect(parseApiKey(`cpk_${id}.${user}.${secret}`)).toEqual({
      apiKeyId: "67961307-36ee-4701-a259-fd8b888a3438",
      userId: "968189a4-f0eb-5a71-8bdb-5df1197bb485",
    });
  });

  it("rejects anything else", () => {
    for (const token of [
      "",
      `cpk_${id}.${user}`,
      `cpk_${id}.${user}.${secret}x`,
      `cpk_${id.toUpperCase()}.${user}.${secret}`,
      `cpk_${id}.${user}.${secret.slice(1)}!`,
      `xpk_${id}.${user}.${secret}`,
      ` cpk_${id}.${user}.${secret}`,
    ]) {
      expect(parseApiKey(token), token).toBeNull();
    }
  });
});

describe("scope checks", () => {
  const scoped = (scopes: ApiKeyGrant["scopes"]): ApiKeyGrant => ({ apiKeyId: "k", admin: false, scopes });

  it("lets admin keys do anything, and only admin keys pass routes without a scope", () => {
    expect(hasAccess({ apiKeyId: "k", admin: true, scopes: [] }, undefined)).toBe(true);
    expect(hasAccess(scoped([{ objectType: "images", objectId: null, action: null }]), undefined)).toBe(false);
  });

  it("matches type, then action (null: any), then object (null: any)", () => {
    const key = scoped([
      { objectType: "images", objectId: null, action: "read" },
      { objectType: "chutes", objectId: "c-1", action: null },
    ]);
    expect(hasAccess(key, { objectType: "images", action: "read", objectId: "i-9" })).toBe(true);
    expect(hasAccess(key, { objectType: "images", action: "read" })).toBe(true);
    expect(hasAccess(key, { objectType: "images", action: "delete", objectId: "i-9" })).toBe(false);
    expect(hasAccess(key, { objectType: "chutes", action: "invoke", objectId: "c-1" })).toBe(true);
    expect(hasAccess(key, { objectType: "chutes", action: "invoke", objectId: "c-2" })).toBe(false);
    // A key for one chute cannot list (or create) chutes.
    expect(hasAccess(key, { objectType: "chutes", action: "read", objectId: null })).toBe(false);
    // No "any chutes scope opens every model" shortcut (upstream's hole).
    expect(hasAccess(key, { objectType: "chutes", action: "invoke", objectId: "__megallm__" })).toBe(false);
    expect(hasAccess(key, { objectType: "invocations", action: "read" })).toBe(false);
  });
});

describe("scopeFromPath", () => {
  const app = new Hono().all("*", (c) => c.json(scopeFromPath(c) ?? null));
  const scopeOf = async (method: string, path: string) => (await app.request(path, { method })).json();

  it("takes the type from the first segment and the id from the second", async () => {
    expect(await scopeOf("GET", "/images/abc")).toEqual({ objectType: "images", action: "read", objectId: "abc" });
    expect(await scopeOf("GET", "/images/")).toEqual({ objectType: "images", action: "read", objectId: null });
    expect(await scopeOf("DELETE", "/chutes/c-1")).toEqual({ objectType: "chutes", action: "delete", objectId: "c-1" });
    expect(await scopeOf("POST", "/images")).toEqual({ objectType: "images", action: "write", objectId: null });
    expect(await scopeOf("PUT", "/chutes/c-1")).toEqual({ objectType: "chutes", action: "write", objectId: "c-1" });
  });

  it("treats POST /chutes/{id}/{path} as an invocation of that chute", async () => {
    expect(await scopeOf("POST", "/chutes/c-1/generate/more")).toEqual({
      objectType: "chutes",
      action: "invoke",
      objectId: "c-1",
    });
  });

  it("has no scope for other resources (admin keys only)", async () => {
    expect(await scopeOf("GET", "/users/me")).toBeNull();
    expect(await scopeOf("GET", "/api_keys/")).toBeNull();
    expect(await scopeOf("GET", "/")).toBeNull();
  });
});
