/**
 * The invocation routes inside workerd, before any instance is involved: host and path
 * routing (slug, api, llm), 404s with a detail, the shared security suite on a chute's
 * host (a correctly authenticated call of a chute without instances gets 503
 * `no_instances`, which proves auth and admission passed), scoped keys, private chutes,
 * and the balance gate. Calls that reach instances are in test/e2e/gateway.test.ts
 * (the simulated instances are Node servers).
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/client.ts";
import { balances } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import { createKey, registerUser, sendWithKey, setPermissions, type TestUser } from "./accounts.ts";
import { builtImage, deploy, deployBody } from "./catalogue.ts";
import { callHost, expectError } from "./helpers.ts";
import { runCommonRouteTests } from "./route-security.ts";

const config = configFor(env);
const handle = openDatabase(config);
afterAll(() => handle.close());

const fund = (user: TestUser, usd = "5") =>
  handle.db.update(balances).set({ balance: usd }).where(eq(balances.userId, user.userId));

async function deployed(owner: TestUser, overrides: Record<string, unknown> = {}) {
  await setPermissions(owner, ["developer"]);
  const image = await builtImage(owner, { public: overrides.public === true });
  return deploy(owner, deployBody(`${owner.username}/${image.name}:${image.tag}`, overrides));
}

let owner: TestUser;
let publicChute: Record<string, unknown>;
beforeAll(async () => {
  owner = await registerUser();
  publicChute = await deployed(owner, { public: true });
});

const slugHost = (chute: Record<string, unknown>) => `${String(chute.slug)}.localhost`;

runCommonRouteTests({
  name: "POST {slug}.localhost/echo",
  okStatus: 503,
  request: async (user) => {
    await fund(user);
    return { method: "POST", path: "/echo", host: slugHost(publicChute), body: JSON.stringify({ text: "hi" }) };
  },
  foreignRequest: async (user, other) => {
    await fund(user);
    const hidden = await deployed(other);
    return { method: "POST", path: "/echo", host: slugHost(hidden), body: JSON.stringify({ text: "hi" }) };
  },
  wrongScope: { object_type: "chutes", action: "read" },
});

describe("invocation routing", () => {
  it("answers unknown slugs before authentication, and unknown cords after, with 404 details", async () => {
    const res = await callHost("nobody-nothing-zz.localhost", "/echo", { method: "POST", body: "{}" });
    expect((await expectError(res, 404, "not_found")).detail).toContain("nobody-nothing-zz.localhost");
    const user = await registerUser();
    await fund(user);
    const key = await createKey(user);
    const cord = await sendWithKey(key.secret_key, "POST", "/nope", "{}", { host: slugHost(publicChute) });
    expect((await expectError(cord, 404, "not_found")).detail).toContain("/nope");
  });

  it("serves POST /chutes/{id}/{path} on api. and routes llm. by model", async () => {
    const user = await registerUser();
    await fund(user);
    const key = await createKey(user);
    const api = await sendWithKey(key.secret_key, "POST", `/chutes/${String(publicChute.chute_id)}/echo`, "{}");
    await expectError(api, 503, "no_instances");
    const missingCord = await sendWithKey(key.secret_key, "POST", `/chutes/${String(publicChute.chute_id)}/nope`, "{}");
    await expectError(missingCord, 404, "not_found");
    const model = await sendWithKey(
      key.secret_key,
      "POST",
      "/v1/chat/completions",
      JSON.stringify({ model: "x/none" }),
      {
        host: "llm.localhost",
      },
    );
    expect((await expectError(model, 404, "not_found")).detail).toBe("model not found: x/none");
    const noModel = await sendWithKey(key.secret_key, "POST", "/v1/chat/completions", "{}", { host: "llm.localhost" });
    await expectError(noModel, 400, "bad_request");
    const list = await callHost("llm.localhost", "/v1/models", {
      headers: { authorization: `Bearer ${key.secret_key}` },
    });
    expect(list.status).toBe(200);
    expect(await list.json()).toMatchObject({ object: "list", data: expect.any(Array) });
  });

  it("gates on the balance (402), and 503s carry Retry-After and the invocation id", async () => {
    const user = await registerUser();
    const key = await createKey(user);
    const broke = await sendWithKey(key.secret_key, "POST", "/echo", "{}", { host: slugHost(publicChute) });
    expect((await expectError(broke, 402, "payment_required")).detail).toMatch(/balance/);
    // The gate caches an empty balance for a few seconds; a free account passes at once
    // (a new key: a key's cached grant carries the permissions it was loaded with).
    await setPermissions(user, ["free_account"]);
    const freeKey = await createKey(user);
    const none = await sendWithKey(freeKey.secret_key, "POST", "/echo", "{}", { host: slugHost(publicChute) });
    await expectError(none, 503, "no_instances");
    expect(none.headers.get("retry-after")).toBeTruthy();
    expect(none.headers.get("x-chutes-invocationid")).toMatch(/^[0-9a-f-]{36}$/);
  });
});
