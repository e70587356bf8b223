/**
 * The invocation gateway through a real `npm start`, against simulated instances (real
 * Node HTTP servers speaking the instance protocol) seeded as active+verified instances:
 * routing on every host, auth, streaming, failures, admission and exactly-once billing.
 * The platform runs with the short gateway settings of test/support/global-platform.ts.
 */
import http from "node:http";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { cliHeaders } from "../support/chutes-cli.ts";
import {
  balanceOf,
  type Caller,
  eventually,
  invocationRows,
  registerCaller,
  type SeededChute,
  seedChute,
  seedInstance,
} from "../support/gateway-fixture.ts";
import { hostRequest } from "../support/http.ts";
import type { SimInstance } from "../support/sim-instance.ts";

const base = inject("platformUrl");
const dbUrl = inject("platformDatabaseUrl");
const sims: SimInstance[] = [];
afterAll(() => Promise.all(sims.map((s) => s.close())));

async function instanceOf(chuteId: string, model?: string): Promise<SimInstance> {
  const sim = await seedInstance(dbUrl, chuteId, { model });
  sims.push(sim);
  return sim;
}

const auth = (caller: Caller) => ({ authorization: `Bearer ${caller.apiKey}`, "content-type": "application/json" });
const post = (host: string, path: string, caller: Caller, body: unknown, timeoutMs?: number) =>
  hostRequest(base, host, path, { method: "POST", headers: auth(caller), body: JSON.stringify(body), timeoutMs });
const host = (chute: SeededChute) => `${chute.slug}.localhost`;

/** SSE events of a text (data payloads and named events). */
const events = (text: string) =>
  text
    .split("\n\n")
    .filter(Boolean)
    .map((block) => ({
      event: /^event: (.*)$/m.exec(block)?.[1] ?? null,
      data: /^data: (.*)$/m.exec(block)?.[1] ?? null,
      comment: block.startsWith(":"),
    }));

let owner: Caller;
let caller: Caller;
let echo: SeededChute;

beforeAll(async () => {
  owner = await registerCaller(base, dbUrl);
  caller = await registerCaller(base, dbUrl, { balanceUsd: 50 });
  echo = await seedChute(dbUrl, owner);
  await instanceOf(echo.chuteId);
});

describe("invocation gateway", () => {
  it("relays a plain JSON call through {slug}.localhost, records it and bills it exactly once", async () => {
    const before = Number(await balanceOf(dbUrl, caller.userId));
    const res = await post(host(echo), "/echo", caller, { hello: "world" });
    expect(res.status, res.text).toBe(200);
    expect(res.headers["content-type"]).toBe("application/json");
    expect(res.json()).toMatchObject({ ok: true, path: "/echo", body: { hello: "world" } });
    const parent = String(res.headers["x-chutes-invocationid"]);
    expect(res.headers["ratelimit-policy"]).toBe('"invocations";q=30;w=60');
    const [row] = await eventually(async () => {
      const rows = (await invocationRows(dbUrl, caller.userId)).filter((r) => r.parent_invocation_id === parent);
      expect(rows).toHaveLength(1);
      return rows;
    });
    expect(row?.error_message).toBeNull();
    // One second of a multiplier-1 chute: 2.7375 / 3600 USD.
    expect(Number(row?.cost_usd)).toBeCloseTo(2.7375 / 3600, 10);
    await eventually(async () => {
      expect(before - Number(await balanceOf(dbUrl, caller.userId))).toBeCloseTo(Number(row?.cost_usd), 10);
    });
  });

  it("serves SDK-style calls on api.localhost: POST /chutes/{id}/{cord path}", async () => {
    const res = await post("api.localhost", `/chutes/${echo.chuteId}/echo`, caller, { via: "api" });
    expect(res.status, res.text).toBe(200);
    expect(res.json()).toMatchObject({ body: { via: "api" } });
  });

  it("streams SSE chunk by chunk, byte for byte", async () => {
    const res = await post(host(echo), "/stream", caller, { chunks: 50, interval_ms: 1 });
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("text/event-stream");
    const expected = `${Array.from({ length: 50 }, (_, i) => `data: {"i":${i}}\n\n`).join("")}data: [DONE]\n\n`;
    expect(res.text).toBe(expected);
  });

  it("answers unknown slugs, cords and models with 404 and a clear detail", async () => {
    const slug = await post("nobody-nothing.localhost", "/echo", caller, {});
    expect(slug.status).toBe(404);
    expect(slug.json().detail).toContain("nobody-nothing.localhost");
    const cord = await post(host(echo), "/nope", caller, {});
    expect(cord.status).toBe(404);
    expect(cord.json().detail).toContain("/nope");
    const model = await post("llm.localhost", "/v1/chat/completions", caller, { model: "no/such-model", messages: [] });
    expect(model.status).toBe(404);
    expect(model.json().detail).toBe("model not found: no/such-model");
  });

  it("requires credentials, keeps scoped keys to their chutes and private chutes to owner and shares", async () => {
    const anonymous = await hostRequest(base, host(echo), "/echo", { method: "POST", body: "{}" });
    expect(anonymous.status).toBe(401);
    // A key scoped to invoke another chute.
    const other = await seedChute(dbUrl, owner);
    const body = JSON.stringify({
      name: `scoped_${crypto.randomUUID().slice(0, 8)}`,
      admin: false,
      scopes: [{ object_type: "chutes", object_id: other.chuteId, action: "invoke" }],
    });
    const minted = await hostRequest(base, "api.localhost", "/api_keys/", {
      method: "POST",
      headers: await cliHeaders(caller.hotkey, { body, userId: caller.userId }),
      body,
    });
    expect(minted.status, minted.text).toBe(200);
    const scoped = { ...caller, apiKey: String(minted.json().secret_key) };
    const refused = await post(host(echo), "/echo", scoped, {});
    expect(refused.status).toBe(403);
    expect(refused.json().detail).toContain(echo.chuteId);
    // Private chute of another user: invisible.
    const secret = await seedChute(dbUrl, owner, { public: false });
    await instanceOf(secret.chuteId);
    const hidden = await post(host(secret), "/echo", caller, {});
    expect(hidden.status).toBe(404);
    expect((await post(host(secret), "/echo", owner, {})).status).toBe(200);
  });

  it("routes llm.localhost by model: /v1/models, streamed completions ending with usage and cost, plain JSON unchanged", async () => {
    const model = `sim/model-${crypto.randomUUID().slice(0, 8)}`;
    const llm = await seedChute(dbUrl, owner, { template: "vllm", name: model });
    await instanceOf(llm.chuteId, model);
    const models = await hostRequest(base, "llm.localhost", "/v1/models", { headers: auth(caller) });
    expect(models.status).toBe(200);
    expect(models.json<{ data: { id: string }[] }>().data.map((m) => m.id)).toContain(model);

    const stream = await post("llm.localhost", "/v1/chat/completions", caller, {
      model,
      stream: true,
      max_tokens: 5,
      messages: [{ role: "user", content: "hi" }],
    });
    expect(stream.status, stream.text).toBe(200);
    const all = events(stream.text);
    expect(all.at(-1)?.data).toBe("[DONE]");
    const final = JSON.parse(String(all.at(-2)?.data)) as { usage: Record<string, unknown> };
    expect(final.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 5, cost_usd: expect.any(Number) });
    expect(final.usage.cost_usd).toBeCloseTo(2.7375 / 3600, 8);
    expect(final.usage.invocation_id).toBe(stream.headers["x-chutes-invocationid"]);
    expect(all.filter((e) => e.data?.includes('"delta"'))).toHaveLength(5);

    const plain = await post("llm.localhost", "/v1/chat/completions", caller, { model, max_tokens: 3, messages: [] });
    expect(plain.status).toBe(200);
    expect(plain.json()).toMatchObject({ object: "chat.completion", usage: { completion_tokens: 3 } });

    // The slug host serves the same chute by its public paths.
    const bySlug = await post(host(llm), "/v1/chat/completions", caller, { model, max_tokens: 2, messages: [] });
    expect(bySlug.status).toBe(200);
    const parent = String(stream.headers["x-chutes-invocationid"]);
    const rows = await eventually(async () => {
      const found = (await invocationRows(dbUrl, caller.userId)).filter((r) => r.parent_invocation_id === parent);
      expect(found).toHaveLength(1);
      return found;
    });
    expect(rows[0]?.metrics).toMatchObject({ it: 5, ot: 5 });
    expect(Number(rows[0]?.cost_usd)).toBeCloseTo(Number(final.usage.cost_usd), 10);
  });

  it("ends a stream that breaks midway with an error event, bills nothing and counts the failure", async () => {
    const victim = await registerCaller(base, dbUrl, { balanceUsd: 5 });
    const before = await balanceOf(dbUrl, victim.userId);
    const res = await post(host(echo), "/die", victim, { chunks: 20, die_after: 3 });
    expect(res.status).toBe(200);
    const all = events(res.text);
    expect(all.filter((e) => e.data?.startsWith('{"i"'))).toHaveLength(3);
    expect(all.at(-1)).toMatchObject({ event: "error" });
    expect(JSON.parse(String(all.at(-1)?.data))).toMatchObject({ error: "stream_interrupted" });
    const [row] = await eventually(async () => {
      const rows = await invocationRows(dbUrl, victim.userId);
      expect(rows).toHaveLength(1);
      return rows;
    });
    expect(row?.parent_invocation_id).toBe(res.headers["x-chutes-invocationid"]);
    expect(row?.error_message).toMatch(/stream broke/);
    expect(Number(row?.cost_usd)).toBe(0);
    expect(await balanceOf(dbUrl, victim.userId)).toBe(before);
  });

  it("retries on another instance before the first byte, recording the failed attempt unbilled", async () => {
    const chute = await seedChute(dbUrl, owner);
    const [bad, good] = [await instanceOf(chute.chuteId), await instanceOf(chute.chuteId)];
    bad.faults = { status: 500 };
    const retrier = await registerCaller(base, dbUrl, { balanceUsd: 5 });
    // The router may pick either first; call until the failing one has been tried.
    for (let i = 0; i < 6 && bad.calls.length === 0; i++) {
      const res = await post(host(chute), "/echo", retrier, { i });
      expect(res.status, res.text).toBe(200);
      expect(res.json()).toMatchObject({ instance_id: good.instanceId });
    }
    expect(bad.calls.length).toBeGreaterThan(0);
    const rows = await eventually(async () => {
      const found = await invocationRows(dbUrl, retrier.userId);
      expect(found.filter((r) => r.error_message !== null)).toHaveLength(bad.calls.length);
      return found;
    });
    const failed = rows.find((r) => r.error_message !== null);
    expect(failed?.error_message).toBe("instance error 500");
    expect(Number(failed?.cost_usd)).toBe(0);
    // The failed attempt and the success that followed share the client's invocation id.
    expect(rows.filter((r) => r.parent_invocation_id === failed?.parent_invocation_id)).toHaveLength(2);
  });

  it("cancels the instance's stream when the client goes away, and bills nothing", async () => {
    const chute = await seedChute(dbUrl, owner);
    const sim = await instanceOf(chute.chuteId);
    const leaver = await registerCaller(base, dbUrl, { balanceUsd: 5 });
    const url = new URL("/stream", base);
    await new Promise<void>((resolve, reject) => {
      const req = http.request(
        url,
        { method: "POST", headers: { ...auth(leaver), host: `${host(chute)}:${url.port}` } },
        (res) => {
          res.once("data", () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on("error", () => {});
      req.on("timeout", () => reject(new Error("no first chunk")));
      req.end(JSON.stringify({ chunks: 2000, interval_ms: 5 }));
    });
    await eventually(async () => expect(sim.aborted).toHaveLength(1));
    const [row] = await eventually(async () => {
      const rows = await invocationRows(dbUrl, leaver.userId);
      expect(rows).toHaveLength(1);
      return rows;
    });
    expect(row?.error_message).toBe("CLIENT_DISCONNECTED");
    expect(Number(row?.cost_usd)).toBe(0);
    expect(await balanceOf(dbUrl, leaver.userId)).toBe("5.0000000000");
  });

  it("times out a slow instance and records the timeout", async () => {
    const res = await post(host(echo), "/slow", caller, { delay_ms: 5000 }, 20_000);
    expect(res.status).toBe(502);
    expect(res.json().detail).toMatch(/timeout/);
    const parent = String(res.headers["x-chutes-invocationid"]);
    const rows = await eventually(async () => {
      const found = (await invocationRows(dbUrl, caller.userId)).filter((r) => r.parent_invocation_id === parent);
      expect(found).toHaveLength(1);
      return found;
    });
    expect(rows[0]?.error_message).toMatch(/^timeout/);
  });

  it("keeps a slow stream alive with keepalive comments, then relays it", async () => {
    const slowStream = await seedChute(dbUrl, owner);
    const sim = await instanceOf(slowStream.chuteId);
    sim.faults = { delayMs: 1500 };
    const res = await post(host(slowStream), "/stream", caller, { chunks: 3, interval_ms: 0 });
    expect(res.status).toBe(200);
    const all = events(res.text);
    expect(all[0]?.comment).toBe(true);
    expect(all.filter((e) => e.data?.startsWith('{"i"'))).toHaveLength(3);
    expect(all.at(-1)?.data).toBe("[DONE]");
  });

  it("answers 503 with Retry-After when a chute has no instance", async () => {
    const lonely = await seedChute(dbUrl, owner);
    const res = await post(host(lonely), "/echo", caller, {});
    expect(res.status).toBe(503);
    expect(res.headers["retry-after"]).toBeDefined();
    expect(res.json()).toMatchObject({ code: "no_instances" });
  });

  it("refuses an empty balance with 402, unless the chute is free", async () => {
    const broke = await registerCaller(base, dbUrl, { balanceUsd: 0 });
    const res = await post(host(echo), "/echo", broke, {});
    expect(res.status).toBe(402);
    expect(res.json().detail).toMatch(/balance/);
    const free = await seedChute(dbUrl, owner, { discount: 1 });
    await instanceOf(free.chuteId);
    expect((await post(host(free), "/echo", broke, {})).status).toBe(200);
  });

  it("rate-limits a user per chute with RateLimit headers and Retry-After", async () => {
    const busy = await registerCaller(base, dbUrl);
    // Windows are fixed (60 s): start the 31 calls well inside one, so none straddles a boundary.
    const intoWindow = Date.now() % 60_000;
    if (intoWindow > 45_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoWindow + 100));
    let last: Awaited<ReturnType<typeof post>> | undefined;
    for (let i = 0; i < 31; i++) last = await post(host(echo), "/echo", busy, { i });
    expect(last?.status).toBe(429);
    expect(last?.json()).toMatchObject({ code: "rate_limited" });
    expect(Number(last?.headers["retry-after"])).toBeGreaterThan(0);
    expect(last?.headers.ratelimit).toMatch(/^"invocations";r=0;t=\d+$/);
  });

  it("bills 200 concurrent invocations exactly once each: the balance change is the sum of the rows", async () => {
    const heavy = await registerCaller(base, dbUrl, { balanceUsd: 1000, permissions: ["unlimited"] });
    const chute = await seedChute(dbUrl, owner);
    await Promise.all([instanceOf(chute.chuteId), instanceOf(chute.chuteId), instanceOf(chute.chuteId)]);
    const before = Number(await balanceOf(dbUrl, heavy.userId));
    // All 200 are issued at once; 64 connections carry them (wrangler dev's proxy drops
    // connections when a 2-core machine is flooded with hundreds of new sockets).
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const one = (i: number) =>
      new Promise<string>((resolve, reject) => {
        const url = new URL("/echo", base);
        const req = http.request(
          url,
          { method: "POST", agent, headers: { ...auth(heavy), host: `${host(chute)}:${url.port}` } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (chunk: Buffer) => chunks.push(chunk));
            res.on("end", () =>
              resolve(res.statusCode === 200 ? "200" : `${res.statusCode} ${Buffer.concat(chunks).toString()}`),
            );
          },
        );
        req.on("error", reject);
        req.end(JSON.stringify({ i }));
      });
    const statuses = await Promise.all(Array.from({ length: 200 }, (_, i) => one(i)));
    agent.destroy();
    expect(statuses.filter((s) => s !== "200")).toEqual([]);
    const rows = await eventually(async () => {
      const found = await invocationRows(dbUrl, heavy.userId);
      expect(found).toHaveLength(200);
      return found;
    }, 30_000);
    expect(new Set(rows.map((r) => r.parent_invocation_id)).size).toBe(200);
    expect(rows.every((r) => r.error_message === null)).toBe(true);
    const sum = rows.reduce((total, r) => total + Number(r.cost_usd), 0);
    await eventually(async () => {
      expect(before - Number(await balanceOf(dbUrl, heavy.userId))).toBeCloseTo(sum, 8);
    });
    // The work spread over the three instances.
    expect(new Set(rows.map((r) => r.instance_id)).size).toBe(3);
  });
});
