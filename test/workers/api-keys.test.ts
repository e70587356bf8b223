import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/client.ts";
import { apiKeyScopes, apiKeys } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import { apiHost } from "../../src/hosts/api.ts";
import { sha256Hex } from "../../src/lib/crypto.ts";
import { compactUuid } from "../../src/lib/ids.ts";
import { openRedis } from "../../src/lib/redis.ts";
import {
  API_HOST,
  type CreatedKey,
  createKey,
  registerUser,
  sendSigned,
  sendWithKey,
  signedRequest,
  type TestUser,
  uniqueName,
} from "./accounts.ts";
import { callHost, expectError } from "./helpers.ts";
import { type RouteUnderTest, runCommonRouteTests } from "./route-security.ts";

const config = configFor(env);
const redis = openRedis(config);
const handle = openDatabase(config);
const db = handle.db;
afterAll(() => handle.close());

const PURPOSE = "api_keys";
const post = (user: TestUser, body: string, path = "/api_keys/") =>
  sendSigned(user.hotkey, { method: "POST", path, body });
const get = (user: TestUser, path: string) => sendSigned(user.hotkey, { method: "GET", path, purpose: PURPOSE });
const del = (user: TestUser, path: string) => sendSigned(user.hotkey, { method: "DELETE", path, purpose: PURPOSE });
const keysOf = async (user: TestUser) => db.select().from(apiKeys).where(eq(apiKeys.userId, user.userId));

/** Sends through the API host with a configuration override (e.g. an unreachable Redis). */
async function withEnv(request: Request, overrides: Record<string, string>): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await apiHost.fetch(request, { ...env, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}
const DEAD_REDIS = { UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1" };

/** The shared security suite for a route on one key: the actor's own, or the owner's (404). */
const oneKeyRoute = (method: "GET" | "DELETE"): RouteUnderTest => {
  const on = async (owner: TestUser) => ({
    method,
    path: `/api_keys/${(await createKey(owner)).api_key_id}`,
    purpose: PURPOSE,
  });
  return { name: `${method} /api_keys/{key}`, request: on, foreignRequest: (_user, owner) => on(owner) };
};

describe("POST /api_keys", () => {
  it("mints an admin key in upstream's format, shown once and stored as SHA-256", async () => {
    const user = await registerUser();
    const res = await post(user, JSON.stringify({ name: "ci key", admin: true }));
    expect(res.status).toBe(200);
    const key = (await res.json()) as CreatedKey & Record<string, unknown>;
    expect(Object.keys(key).sort()).toEqual(
      ["admin", "api_key_id", "created_at", "last_used_at", "name", "scopes", "secret_key", "user_id"].sort(),
    );
    expect(key).toMatchObject({ name: "ci key", admin: true, user_id: user.userId, scopes: [], last_used_at: null });
    expect(key.secret_key).toMatch(/^cpk_[0-9a-f]{32}\.[0-9a-f]{32}\.[A-Za-z0-9]{32}$/);
    expect(key.secret_key).toHaveLength(102);
    expect(key.secret_key.startsWith(`cpk_${compactUuid(key.api_key_id)}.${compactUuid(user.userId)}.`)).toBe(true);

    const [row] = await db.select().from(apiKeys).where(eq(apiKeys.apiKeyId, key.api_key_id));
    expect(row?.keyHash).toBe(await sha256Hex(key.secret_key));
    expect(JSON.stringify(row)).not.toContain(key.secret_key.slice(-32));

    const shown = (await (await get(user, `/api_keys/${key.api_key_id}`)).json()) as Record<string, unknown>;
    expect(shown.secret_key).toBeUndefined();
    expect(JSON.stringify(shown)).not.toContain(key.secret_key.slice(-32));
  });

  it("mints a scoped key, de-duplicating the scopes the CLI repeats, and exposes `action`", async () => {
    const user = await registerUser();
    const scopes = [
      { object_type: "chutes", action: "read" },
      { object_type: "chutes", action: "read" },
      { object_type: "images", object_id: "3f1e0c1a-8f4b-5c55-9d6a-0b7a1c2d3e4f", action: null },
      { object_type: "invocations" },
    ];
    const res = await post(user, JSON.stringify({ name: "scoped", admin: false, scopes }), "/api_keys");
    expect(res.status).toBe(200);
    const key = (await res.json()) as CreatedKey;
    expect(key.admin).toBe(false);
    expect(key.scopes.map(({ scope_id: _, ...rest }) => rest)).toEqual([
      { object_type: "chutes", object_id: null, action: "read" },
      { object_type: "images", object_id: "3f1e0c1a-8f4b-5c55-9d6a-0b7a1c2d3e4f", action: null },
      { object_type: "invocations", object_id: null, action: null },
    ]);
    expect(await db.select().from(apiKeyScopes).where(eq(apiKeyScopes.apiKeyId, key.api_key_id))).toHaveLength(3);
  });

  it("ignores scopes sent with an admin key, as upstream", async () => {
    const user = await registerUser();
    const key = await createKey(user, { admin: true, scopes: [{ object_type: "images", action: "read" }] });
    expect(key.scopes).toEqual([]);
  });

  it("answers 409 for a name the user already uses; other users may use it", async () => {
    const [alice, bob] = await Promise.all([registerUser(), registerUser()]);
    await createKey(alice, { name: "deploy" });
    const body = await expectError(await post(alice, JSON.stringify({ name: "deploy", admin: true })), 409, "conflict");
    expect(body.detail).toBe("An API key already exists with this name");
    await createKey(bob, { name: "deploy" });
    expect(await keysOf(alice)).toHaveLength(1);
  });

  it("validates every field (422), JSON (400) and size (413), creating nothing", async () => {
    const user = await registerUser();
    const invalid: unknown[] = [
      { name: "", admin: true },
      { name: "x".repeat(25), admin: true },
      { name: "semi;colon", admin: true },
      { name: "no admin flag" },
      { name: "string admin", admin: "true" },
      { name: "no scopes", admin: false },
      { name: "no scopes", admin: false, scopes: [] },
      { name: "bad type", admin: false, scopes: [{ object_type: "users", action: "read" }] },
      { name: "bad action", admin: false, scopes: [{ object_type: "images", action: "launch" }] },
      { name: "bad id", admin: false, scopes: [{ object_type: "images", object_id: 7 }] },
      { name: "not a list", admin: false, scopes: { object_type: "images" } },
      ["name", "admin"],
    ];
    for (const body of invalid) {
      await expectError(await post(user, JSON.stringify(body)), 422, "validation_failed");
    }
    await expectError(await post(user, '{"name": "x", "admin": tru'), 400, "invalid_json");
    await expectError(
      await post(user, JSON.stringify({ name: "big", admin: true, pad: "x".repeat(1 << 20) })),
      413,
      "payload_too_large",
    );
    expect(await keysOf(user)).toHaveLength(0);
  });

  it("lets only the account's full authority mint keys: a scoped key cannot, not even an admin one", async () => {
    const user = await registerUser();
    const scoped = await createKey(user, { admin: false, scopes: [{ object_type: "chutes", action: null }] });
    for (const admin of [true, false]) {
      const res = await sendWithKey(
        scoped.secret_key,
        "POST",
        "/api_keys/",
        JSON.stringify({ name: uniqueName("k"), admin, scopes: [{ object_type: "chutes" }] }),
      );
      await expectError(res, 403, "forbidden");
    }
    const adminKey = await createKey(user, { admin: true });
    const viaAdminKey = await sendWithKey(
      adminKey.secret_key,
      "POST",
      "/api_keys",
      JSON.stringify({ name: uniqueName("k"), admin: true }),
    );
    expect(viaAdminKey.status).toBe(200);
    expect(await keysOf(user)).toHaveLength(3);
  });

  runCommonRouteTests({
    name: "POST /api_keys/",
    request: () => ({
      method: "POST",
      path: "/api_keys/",
      body: JSON.stringify({ name: uniqueName("k"), admin: true }),
    }),
  });
});

describe("GET /api_keys", () => {
  it("lists the caller's keys newest first, paginated with the total, on both path forms", async () => {
    const [user, other] = await Promise.all([registerUser(), registerUser()]);
    const made: CreatedKey[] = [];
    for (let i = 0; i < 3; i++) made.push(await createKey(user, { name: `key ${i}` }));
    await createKey(other);

    const first = await get(user, "/api_keys/?limit=2&page=0");
    expect(first.status).toBe(200);
    const page0 = (await first.json()) as { total: number; page: number; limit: number; items: CreatedKey[] };
    expect(page0).toMatchObject({ total: 3, page: 0, limit: 2 });
    expect(page0.items.map((k) => k.name)).toEqual(["key 2", "key 1"]);
    expect(page0.items[0]).not.toHaveProperty("secret_key");

    const page1 = (await (await get(user, "/api_keys?limit=2&page=1")).json()) as { items: CreatedKey[] };
    expect(page1.items.map((k) => k.api_key_id)).toEqual([made[0]?.api_key_id]);

    const defaults = (await (await get(user, "/api_keys")).json()) as { page: number; limit: number };
    expect(defaults).toMatchObject({ page: 0, limit: 25 });
  });

  it("filters by a name fragment, literally (no LIKE wildcards)", async () => {
    const user = await registerUser();
    await createKey(user, { name: "prod deploy" });
    await createKey(user, { name: "Prod_read" });
    await createKey(user, { name: "staging" });
    const names = async (query: string) =>
      (
        (await (await get(user, `/api_keys/?name=${encodeURIComponent(query)}`)).json()) as { items: CreatedKey[] }
      ).items
        .map((k) => k.name)
        .sort();
    expect(await names("prod")).toEqual(["Prod_read", "prod deploy"]);
    expect(await names("_")).toEqual(["Prod_read"]);
    expect(await names("%")).toEqual([]);
  });

  it("validates the query (422)", async () => {
    const user = await registerUser();
    for (const query of ["limit=0", "limit=101", "page=-1", "limit=ten", "limit=1&limit=2"]) {
      await expectError(await get(user, `/api_keys/?${query}`), 422, "validation_failed");
    }
  });

  runCommonRouteTests({
    name: "GET /api_keys/",
    request: () => ({ method: "GET", path: "/api_keys/", purpose: PURPOSE }),
  });
});

describe("GET /api_keys/{key}", () => {
  it("answers one of the caller's keys by id or by name", async () => {
    const user = await registerUser();
    const key = await createKey(user, { name: "by name" });
    for (const path of [
      `/api_keys/${key.api_key_id}`,
      `/api_keys/${key.api_key_id.toUpperCase()}`,
      "/api_keys/by%20name",
    ]) {
      const res = await get(user, path);
      expect(res.status, path).toBe(200);
      expect(await res.json()).toMatchObject({ api_key_id: key.api_key_id, name: "by name", user_id: user.userId });
    }
    const missing = await expectError(await get(user, "/api_keys/nothing"), 404, "not_found");
    expect(missing.detail).toBe("API key with id nothing not found or doesn't belong to you");
    await expectError(await get(user, "/api_keys/semi;colon"), 422, "validation_failed");
  });

  runCommonRouteTests(oneKeyRoute("GET"));
});

describe("DELETE /api_keys/{key}", () => {
  it("deletes the caller's key and its scopes; the key stops working at once", async () => {
    const user = await registerUser();
    const key = await createKey(user, { admin: false, scopes: [{ object_type: "images", action: "read" }] });
    const admin = await createKey(user);
    // Warm the cache, then delete.
    expect((await sendWithKey(admin.secret_key, "GET", "/users/me")).status).toBe(200);
    expect(await redis.get(`auth:api_key:${admin.api_key_id}`)).toMatchObject({ grant: { admin: true } });

    for (const target of [key, admin]) {
      const res = await del(user, `/api_keys/${target.api_key_id}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ api_key_id: target.api_key_id, deleted: true });
    }
    await expectError(await sendWithKey(admin.secret_key, "GET", "/users/me"), 401, "unauthorized");
    expect(await redis.get(`auth:api_key:${admin.api_key_id}`)).toEqual({ deleted: true });
    expect(await keysOf(user)).toHaveLength(0);
    expect(await db.select().from(apiKeyScopes).where(eq(apiKeyScopes.apiKeyId, key.api_key_id))).toHaveLength(0);
    await expectError(await get(user, `/api_keys/${key.api_key_id}`), 404, "not_found");
    await expectError(await del(user, `/api_keys/${key.api_key_id}`), 404, "not_found");
  });

  it("deletes by name, and never another user's key (which keeps working)", async () => {
    const [user, owner] = await Promise.all([registerUser(), registerUser()]);
    const theirs = await createKey(owner, { name: "shared name" });
    await createKey(user, { name: "shared name" });
    await expectError(await del(user, `/api_keys/${theirs.api_key_id}`), 404, "not_found");
    expect((await sendWithKey(theirs.secret_key, "GET", "/users/me")).status).toBe(200);
    expect((await del(user, "/api_keys/shared%20name")).status).toBe(200);
    expect(await keysOf(user)).toHaveLength(0);
    expect(await keysOf(owner)).toHaveLength(1);
  });

  it("deletes nothing when Redis cannot take the revocation (503)", async () => {
    const user = await registerUser();
    const key = await createKey(user);
    const request = await signedRequest(user.hotkey, {
      method: "DELETE",
      path: `/api_keys/${key.api_key_id}`,
      purpose: PURPOSE,
    });
    // The hotkey's replay check needs Redis first, so revoke with the admin key itself.
    const viaKey = new Request(request.url, {
      method: "DELETE",
      headers: { authorization: `Bearer ${key.secret_key}` },
    });
    const res = await withEnv(viaKey, DEAD_REDIS);
    await expectError(res, 503, "dependency_unavailable");
    expect(await keysOf(user)).toHaveLength(1);
    expect((await sendWithKey(key.secret_key, "GET", "/users/me")).status).toBe(200);
  });

  runCommonRouteTests(oneKeyRoute("DELETE"));
});

describe("authenticating with an API key", () => {
  it("accepts Basic, Bearer, a bare Authorization value and X-API-Key", async () => {
    const user = await registerUser();
    const { secret_key: secret } = await createKey(user);
    const variants: Record<string, string>[] = [
      { authorization: `Basic ${secret}` },
      { authorization: `Bearer ${secret}` },
      { authorization: secret },
      { "x-api-key": secret },
    ];
    for (const headers of variants) {
      const res = await callHost(API_HOST, "/users/me", { headers });
      expect(res.status, JSON.stringify(Object.keys(headers))).toBe(200);
      expect(await res.json()).toMatchObject({ user_id: user.userId });
    }
  });

  it("refuses wrong secrets, another user's id, malformed keys and JWTs (401)", async () => {
    const [user, other] = await Promise.all([registerUser(), registerUser()]);
    const { secret_key: secret } = await createKey(user);
    const [prefix, userPart, tail] = secret.split(".");
    const wrongSecret = `${prefix}.${userPart}.${"A".repeat(32)}`;
    const wrongUser = `${prefix}.${compactUuid(other.userId)}.${tail}`;
    for (const authorization of [
      `Basic ${wrongSecret}`,
      `Basic ${wrongUser}`,
      `Basic ${secret.slice(0, -1)}`,
      "Basic cpk_nothing",
      "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig",
    ]) {
      await expectError(await callHost(API_HOST, "/users/me", { headers: { authorization } }), 401, "unauthorized");
    }
    // A wrong secret is refused from the cache as well as from Postgres.
    expect((await sendWithKey(secret, "GET", "/users/me")).status).toBe(200);
    await expectError(await sendWithKey(wrongSecret, "GET", "/users/me"), 401, "unauthorized");
  });

  it("caches lookups briefly in Redis and records when a key was last used", async () => {
    const user = await registerUser();
    const key = await createKey(user);
    expect(await redis.get(`auth:api_key:${key.api_key_id}`)).toBeNull();
    expect((await sendWithKey(key.secret_key, "GET", "/users/me")).status).toBe(200);
    const cached = await redis.get<Record<string, unknown>>(`auth:api_key:${key.api_key_id}`);
    expect(cached).toMatchObject({ keyHash: await sha256Hex(key.secret_key), user: { userId: user.userId } });
    const ttl = await redis.ttl(`auth:api_key:${key.api_key_id}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
    const [row] = await db.select().from(apiKeys).where(eq(apiKeys.apiKeyId, key.api_key_id));
    expect(row?.lastUsedAt).toBeInstanceOf(Date);
  });

  it("keeps working from Postgres when Redis is unreachable", async () => {
    const user = await registerUser();
    const key = await createKey(user);
    const res = await withEnv(
      new Request(`http://${API_HOST}/users/me`, { headers: { authorization: `Basic ${key.secret_key}` } }),
      DEAD_REDIS,
    );
    expect(res.status).toBe(200);
  });

  it("gives a scoped key no access to account routes (403)", async () => {
    const user = await registerUser();
    const key = await createKey(user, { admin: false, scopes: [{ object_type: "chutes" }] });
    await expectError(await sendWithKey(key.secret_key, "GET", "/users/me"), 403, "forbidden");
    await expectError(await sendWithKey(key.secret_key, "GET", "/api_keys/"), 403, "forbidden");
  });
});
