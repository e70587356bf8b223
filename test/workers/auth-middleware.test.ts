/**
 * The middleware later routes build on (requireAdmin, ensureDeveloper, optionalUser,
 * declared and derived API-key scopes, body-signed routes), exercised through a small
 * app of the same kind as the API host, against the real Postgres and Redis.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createHostApp } from "../../src/app.ts";
import { openDatabase } from "../../src/db/client.ts";
import { payments } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import { ensureDeveloper, optionalUser, requireAdmin, requireUser, scopeFromPath } from "../../src/lib/auth.ts";
import { jsonBody } from "../../src/lib/validation.ts";
import type { TestHotkey } from "../support/chutes-cli.ts";
import {
  API_HOST,
  createKey,
  registerUser,
  type SignedRequest,
  setPermissions,
  signedRequest,
  type TestUser,
} from "./accounts.ts";
import { expectError } from "./helpers.ts";

const app = createHostApp()
  .post("/admin/agents", requireAdmin(), async (c) => {
    const body = await jsonBody(c, z.object({ name: z.string() }));
    return c.json({ registered: body.name, by: c.var.auth.user.username });
  })
  .get("/admin/agents", requireAdmin({ purpose: "gpu_agents" }), (c) => c.json({ ok: true }))
  .post("/images", requireUser({ scope: scopeFromPath }), ensureDeveloper, (c) => c.json({ built: true }))
  .get("/images/:id", requireUser({ purpose: "images", scope: scopeFromPath }), (c) =>
    c.json({ id: c.req.param("id") }),
  )
  .get("/chutes", optionalUser({ purpose: "chutes", scope: { objectType: "chutes", action: "read" } }), (c) =>
    c.json({ user: c.var.auth?.user.username ?? null, via: c.var.auth?.via ?? null }),
  );

const GATED = { DEVELOPER_DEPOSIT_USD: "250" };

async function call(request: Request, overrides: Record<string, string> = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await app.fetch(request, { ...env, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}
const signed = async (key: TestHotkey, request: SignedRequest, overrides: Record<string, string> = {}) =>
  call(await signedRequest(key, request), overrides);
const withKey = (secret: string, method: string, path: string, body?: string, overrides: Record<string, string> = {}) =>
  call(
    new Request(`http://${API_HOST}${path}`, { method, body, headers: { authorization: `Basic ${secret}` } }),
    overrides,
  );

const addAgent = (name = "agent-1"): SignedRequest => ({
  method: "POST",
  path: "/admin/agents",
  body: JSON.stringify({ name }),
});

describe("requireAdmin", () => {
  it("lets an admin through by hotkey and by admin key, and no one else (403)", async () => {
    const [admin, user] = await Promise.all([registerUser(), registerUser()]);
    await setPermissions(admin, ["admin"]);
    const ok = await signed(admin.hotkey, addAgent());
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ registered: "agent-1", by: admin.username });
    expect((await signed(admin.hotkey, { method: "GET", path: "/admin/agents", purpose: "gpu_agents" })).status).toBe(
      200,
    );

    const adminKey = await createKey(admin);
    expect((await withKey(adminKey.secret_key, "POST", "/admin/agents", JSON.stringify({ name: "x" }))).status).toBe(
      200,
    );
    const scopedKey = await createKey(admin, { admin: false, scopes: [{ object_type: "chutes" }] });
    await expectError(
      await withKey(scopedKey.secret_key, "POST", "/admin/agents", JSON.stringify({ name: "x" })),
      403,
      "forbidden",
    );

    const denied = await expectError(await signed(user.hotkey, addAgent()), 403, "forbidden");
    expect(denied.detail).toBe("This action requires the admin permission.");
    await setPermissions(user, ["developer", "create_user", "unlimited"]);
    await expectError(await signed(user.hotkey, addAgent()), 403, "forbidden");
  });

  it("covers the signed body: a tampered body is refused (401)", async () => {
    const admin = await registerUser();
    await setPermissions(admin, ["admin"]);
    const request = await signedRequest(admin.hotkey, addAgent("honest"));
    const tampered = new Request(request.url, {
      method: "POST",
      headers: request.headers,
      body: JSON.stringify({ name: "evil" }),
    });
    await expectError(await call(tampered), 401, "unauthorized");
  });
});

describe("ensureDeveloper (developer-deposit gate)", () => {
  const build: SignedRequest = { method: "POST", path: "/images", body: JSON.stringify({}) };

  it("asks a non-developer for what is left of the deposit, at their developer address (401)", async () => {
    const user = await registerUser();
    const body = await expectError(await signed(user.hotkey, build, GATED), 401, "developer_deposit_required");
    expect(body.detail).toContain("$250.00 USD worth of TAO (currently ~0.6250 TAO");
    expect(body.detail).toContain(user.developerPaymentAddress);

    const { db, close } = openDatabase(configFor(env));
    try {
      await db.insert(payments).values({
        paymentId: crypto.randomUUID(),
        userId: user.userId,
        block: 1,
        blockHash: "0xabc",
        extrinsicIndex: Math.floor(Math.random() * 1e9),
        eventIndex: 0,
        fromAddress: "5from",
        toAddress: user.developerPaymentAddress,
        raoAmount: "1000000000",
        fmv: 100,
        usdAmount: "100",
        purpose: "developer",
      });
    } finally {
      await close();
    }
    const partial = await expectError(await signed(user.hotkey, build, GATED), 401, "developer_deposit_required");
    expect(partial.detail).toContain("$150.00 USD");
  });

  it("lets developers through, and everyone when the deposit is 0", async () => {
    const [developer, user] = await Promise.all([registerUser(), registerUser()]);
    await setPermissions(developer, ["developer"]);
    expect((await signed(developer.hotkey, build, GATED)).status).toBe(200);
    expect((await signed(user.hotkey, build, { DEVELOPER_DEPOSIT_USD: "0" })).status).toBe(200);
  });
});

describe("API-key scopes declared by routes", () => {
  it("derives images scopes from the path: read of one image, write for a create", async () => {
    const user = await registerUser();
    await setPermissions(user, ["developer"]);
    const readAll = await createKey(user, { admin: false, scopes: [{ object_type: "images", action: "read" }] });
    const readOne = await createKey(user, {
      admin: false,
      scopes: [{ object_type: "images", object_id: "img-1", action: "read" }],
    });
    const write = await createKey(user, { admin: false, scopes: [{ object_type: "images", action: "write" }] });
    expect((await withKey(readAll.secret_key, "GET", "/images/img-2")).status).toBe(200);
    expect((await withKey(readOne.secret_key, "GET", "/images/img-1")).status).toBe(200);
    const other = await expectError(await withKey(readOne.secret_key, "GET", "/images/img-2"), 403, "forbidden");
    expect(other.detail).toBe("This API key is not scoped for read on images img-2.");
    await expectError(await withKey(readAll.secret_key, "POST", "/images", "{}"), 403, "forbidden");
    expect((await withKey(write.secret_key, "POST", "/images", "{}", GATED)).status).toBe(200);
  });
});

describe("optionalUser", () => {
  it("proceeds anonymously without credentials, as the user with them, and refuses bad ones", async () => {
    const user: TestUser = await registerUser();
    const anonymous = await call(new Request(`http://${API_HOST}/chutes`));
    expect(await anonymous.json()).toEqual({ user: null, via: null });
    const signedIn = await signed(user.hotkey, { method: "GET", path: "/chutes", purpose: "chutes" });
    expect(await signedIn.json()).toEqual({ user: user.username, via: "hotkey" });
    const key = await createKey(user, { admin: false, scopes: [{ object_type: "chutes", action: "read" }] });
    expect(await (await withKey(key.secret_key, "GET", "/chutes")).json()).toEqual({
      user: user.username,
      via: "api_key",
    });
    await expectError(
      await signed(user.hotkey, { method: "GET", path: "/chutes", purpose: "images" }),
      401,
      "unauthorized",
    );
    await expectError(
      await call(new Request(`http://${API_HOST}/chutes`, { headers: { "X-Chutes-Hotkey": user.hotkey.ss58 } })),
      401,
      "unauthorized",
    );
    await expectError(
      await call(new Request(`http://${API_HOST}/chutes`, { headers: { "X-Chutes-Signature": "ab".repeat(64) } })),
      401,
      "unauthorized",
    );
    await expectError(await withKey("cpk_bogus", "GET", "/chutes"), 401, "unauthorized");
  });
});
