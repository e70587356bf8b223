import { afterAll, describe, expect, it } from "vitest";
import { toHex } from "../../src/lib/bytes.ts";
import {
  deriveEnvelopeKeys,
  pingMac,
  pingNonce,
  sealInvocation,
  verifyResponseMac,
} from "../../src/lib/instance-envelope.ts";
import { cliHeaders, randomHotkey } from "../support/chutes-cli.ts";
import { type SimInstance, startSimInstance } from "../support/sim-instance.ts";

const validator = randomHotkey();
const started: SimInstance[] = [];
afterAll(() => Promise.all(started.map((s) => s.close())));

async function start(options: Parameters<typeof startSimInstance>[0]) {
  const sim = await startSimInstance(options);
  started.push(sim);
  return sim;
}

const post = (sim: SimInstance, path: string, body: string | Uint8Array, headers: Record<string, string> = {}) =>
  fetch(`${sim.url}${path}`, { method: "POST", body: body as BodyInit, headers });

async function invoke(sim: SimInstance, sessionKey: Uint8Array, path: string, body: unknown) {
  const keys = await deriveEnvelopeKeys(sessionKey, sim.instanceId ?? "");
  const invocationId = crypto.randomUUID();
  const sealed = await sealInvocation(keys, {
    invocationId,
    method: "POST",
    path,
    query: "",
    contentType: "application/json",
    body: new TextEncoder().encode(JSON.stringify(body)),
  });
  const response = await post(sim, "/_invoke", sealed.body, sealed.headers);
  return { response, authentic: await verifyResponseMac(keys, invocationId, sealed.nonce, response), invocationId };
}

describe("simulated instance", () => {
  it("takes a validator-signed key exchange, then answers pings and enveloped calls", async () => {
    const sessionKey = crypto.getRandomValues(new Uint8Array(32));
    const sim = await start({
      validatorHotkey: validator.ss58,
      unwrapKey: async (wrapped) => {
        const hex = (wrapped as { key?: string }).key ?? "";
        if (hex !== toHex(sessionKey)) throw new Error("wrong wrapping");
        return sessionKey;
      },
    });
    expect(await (await fetch(`${sim.url}/_alive`)).text()).toBe("ok");
    // Before the exchange: 426 on ping and invoke.
    expect((await post(sim, "/_ping", JSON.stringify({ nonce: pingNonce() }))).status).toBe(426);
    expect((await post(sim, "/_invoke", "x")).status).toBe(426);

    const body = JSON.stringify({ instance_id: "inst-9", wrapped_key: { key: toHex(sessionKey) } });
    const stranger = randomHotkey();
    expect((await post(sim, "/_exchange", body, await cliHeaders(stranger, { body }))).status).toBe(401);
    const badWrap = JSON.stringify({ instance_id: "inst-9", wrapped_key: { key: "00" } });
    const refused = await post(sim, "/_exchange", badWrap, await cliHeaders(validator, { body: badWrap }));
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { detail: string }).detail).toMatch(/unwrap/);
    const ok = await post(sim, "/_exchange", body, await cliHeaders(validator, { body }));
    expect(await ok.json()).toEqual({ ok: true });
    expect(sim.instanceId).toBe("inst-9");

    const nonce = pingNonce();
    const pong = (await (await post(sim, "/_ping", JSON.stringify({ nonce }))).json()) as { mac: string };
    expect(pong.mac).toBe(await pingMac(sessionKey, "inst-9", nonce));

    const { response, authentic, invocationId } = await invoke(sim, sessionKey, "/echo", { hello: "world" });
    expect(response.status).toBe(200);
    expect(authentic).toBe(true);
    expect(await response.json()).toMatchObject({
      invocation_id: invocationId,
      path: "/echo",
      body: { hello: "world" },
    });
  });

  it("refuses an envelope sealed with another key, and a replay of a good one", async () => {
    const sessionKey = crypto.getRandomValues(new Uint8Array(32));
    const sim = await start({ instanceId: "inst-1", sessionKey });
    const wrong = await invoke(sim, crypto.getRandomValues(new Uint8Array(32)), "/echo", {});
    expect(wrong.response.status).toBe(401);
    const keys = await deriveEnvelopeKeys(sessionKey, "inst-1");
    const sealed = await sealInvocation(keys, {
      invocationId: crypto.randomUUID(),
      method: "POST",
      path: "/echo",
      query: "",
      contentType: null,
      body: new Uint8Array(),
    });
    expect((await post(sim, "/_invoke", sealed.body, sealed.headers)).status).toBe(200);
    expect((await post(sim, "/_invoke", sealed.body, sealed.headers)).status).toBe(401);
  });

  it("streams SSE chunk by chunk, LLM streams end with usage, and /die drops the connection", async () => {
    const sessionKey = crypto.getRandomValues(new Uint8Array(32));
    const sim = await start({ instanceId: "inst-2", sessionKey, model: "m1" });
    const stream = await invoke(sim, sessionKey, "/stream", { chunks: 5, interval_ms: 0 });
    expect(stream.authentic).toBe(true);
    expect(stream.response.headers.get("content-type")).toBe("text/event-stream");
    const text = await stream.response.text();
    expect(text.match(/^data: /gm)).toHaveLength(6);
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true);

    const chat = await (await invoke(sim, sessionKey, "/chat_stream", { max_tokens: 3 })).response.text();
    expect(chat).toContain('"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}');

    const dying = await invoke(sim, sessionKey, "/die", { chunks: 10, die_after: 2 });
    await expect(dying.response.text()).rejects.toThrow();
    sim.faults = { status: 503 };
    expect((await invoke(sim, sessionKey, "/echo", {})).response.status).toBe(503);
  });
});
