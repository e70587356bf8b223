/**
 * A scripted chutes CLI 0.2.x against a real `npm start`: the requests `chutes register`,
 * `chutes keys create|list|get|delete` send, byte for byte (hotkey from a fixed seed as
 * in `~/.chutes/config.ini`, Python `json.dumps` for register, compact JSON for keys, the
 * `X-Chutes-*` headers), and the statuses and fields the CLI reads back
 * (upstream-sdk.md §2). Every response, errors included, must be JSON.
 */
import { describe, expect, inject, it } from "vitest";
import { cliHeaders, hotkeyFromSeed, pythonJsonDumps, randomHotkey } from "../support/chutes-cli.ts";
import { type HostResponse, hostRequest } from "../support/http.ts";

const base = inject("platformUrl");
const API = "api.localhost";

// `hotkey_seed` in the CLI's config: a fixed 32-byte mini secret. The platform under test
// is fresh for every run (scratch database), so registering it again is never a conflict.
const HOTKEY = hotkeyFromSeed("c11c11c11c11c11c11c11c11c11c11c11c11c11c11c11c11c11c11c11c11c11c");
const COLDKEY = randomHotkey().ss58;
const USERNAME = `cli_${Date.now().toString(36).slice(-8)}`;

/** What aiohttp's `resp.json()` insists on. */
function json<T = Record<string, unknown>>(res: HostResponse): T {
  expect(res.headers["content-type"]).toMatch(/^application\/json/);
  return res.json<T>();
}

/** `sign_request(purpose=...)` followed by a bodiless request, as chutes/crud.py does. */
async function signedGet(method: "GET" | "DELETE", path: string, purpose: string, userId: string) {
  return hostRequest(base, API, path, { method, headers: await cliHeaders(HOTKEY, { purpose, userId }) });
}

describe("the chutes CLI, scripted", () => {
  let userId = "";
  let keyId = "";
  let secret = "";

  it("chutes register: ping, register, developer deposit", async () => {
    const ping = await hostRequest(base, API, "/ping");
    expect(ping.status).toBe(200);

    const payload = pythonJsonDumps({ username: USERNAME, coldkey: COLDKEY });
    expect(payload).toContain('", "coldkey": "');
    const headers = await cliHeaders(HOTKEY, { body: payload });
    const res = await hostRequest(base, API, "/users/register", { method: "POST", headers, body: payload });
    expect(res.status, res.text).toBe(200);
    const data = json<Record<string, string>>(res);
    for (const field of ["user_id", "username", "fingerprint", "payment_address", "developer_payment_address"]) {
      expect(typeof data[field], field).toBe("string");
    }
    expect(data.username).toBe(USERNAME);
    userId = String(data.user_id);

    // Registering the same hotkey again: the CLI prints the JSON error.
    const again = pythonJsonDumps({ username: `${USERNAME}2`, coldkey: COLDKEY });
    const dup = await hostRequest(base, API, "/users/register", {
      method: "POST",
      headers: await cliHeaders(HOTKEY, { body: again }),
      body: again,
    });
    expect(dup.status).toBe(409);
    expect(json(dup)).toMatchObject({ detail: "This hotkey is already registered to a user!" });

    const deposit = await hostRequest(base, API, "/developer_deposit");
    expect(deposit.status).toBe(200);
    expect(json(deposit)).toMatchObject({ usd: expect.any(Number), tao_estimate: expect.any(Number) });
  });

  it("chutes keys create --name cli-key --images --action read", async () => {
    const payload = JSON.stringify({
      name: "cli-key",
      admin: false,
      scopes: [{ object_type: "images", action: "read" }],
    });
    const headers = await cliHeaders(HOTKEY, { body: payload, userId });
    const res = await hostRequest(base, API, "/api_keys/", { method: "POST", headers, body: payload });
    expect(res.status, res.text).toBe(200);
    const data = json<Record<string, unknown>>(res);
    expect(data).toMatchObject({ name: "cli-key", admin: false, user_id: userId });
    expect(data.secret_key).toMatch(/^cpk_[0-9a-f]{32}\.[0-9a-f]{32}\.[A-Za-z0-9]{32}$/);
    keyId = String(data.api_key_id);
    secret = String(data.secret_key);
  });

  it("chutes keys create --name admin-key --admin, then the key works as `Authorization: Basic`", async () => {
    const payload = JSON.stringify({ name: "admin-key", admin: true });
    const res = await hostRequest(base, API, "/api_keys/", {
      method: "POST",
      headers: await cliHeaders(HOTKEY, { body: payload, userId }),
      body: payload,
    });
    expect(res.status, res.text).toBe(200);
    const adminSecret = String(json(res).secret_key);
    const me = await hostRequest(base, API, "/users/me", { headers: { Authorization: `Basic ${adminSecret}` } });
    expect(me.status).toBe(200);
    expect(json(me)).toMatchObject({ user_id: userId, username: USERNAME });
  });

  it("chutes keys list", async () => {
    const res = await signedGet("GET", "/api_keys/?limit=25&page=0", "api_keys", userId);
    expect(res.status, res.text).toBe(200);
    const data = json<{ total: number; items: Record<string, unknown>[] }>(res);
    expect(data.total).toBe(2);
    for (const item of data.items) {
      expect(Object.keys(item)).toEqual(expect.arrayContaining(["api_key_id", "name", "admin", "scopes"]));
      // Rich table cells: strings (or null), never numbers.
      for (const cell of ["api_key_id", "name", "created_at"]) expect(typeof item[cell]).toBe("string");
      expect(item).not.toHaveProperty("secret_key");
    }
    expect(data.items.map((item) => item.name).sort()).toEqual(["admin-key", "cli-key"]);
  });

  it("chutes keys get (by id and by name)", async () => {
    for (const ref of [keyId, "cli-key"]) {
      const res = await signedGet("GET", `/api_keys/${ref}`, "api_keys", userId);
      expect(res.status, res.text).toBe(200);
      expect(json(res)).toMatchObject({ api_key_id: keyId, scopes: [{ object_type: "images", action: "read" }] });
    }
  });

  it("chutes keys delete", async () => {
    const res = await signedGet("DELETE", `/api_keys/${keyId}`, "api_keys", userId);
    expect(res.status, res.text).toBe(200);
    expect(json(res)).toEqual({ api_key_id: keyId, deleted: true });
    const gone = await signedGet("GET", `/api_keys/${keyId}`, "api_keys", userId);
    expect(gone.status).toBe(404);
    expect(json(gone)).toMatchObject({ code: "not_found" });
    const list = await signedGet("GET", "/api_keys/?limit=25&page=0", "api_keys", userId);
    expect(json<{ total: number }>(list).total).toBe(1);
    // The deleted key no longer authenticates anything.
    const me = await hostRequest(base, API, "/users/me", { headers: { Authorization: `Basic ${secret}` } });
    expect(me.status).toBe(401);
    expect(json(me)).toMatchObject({ code: "unauthorized" });
  });
});
