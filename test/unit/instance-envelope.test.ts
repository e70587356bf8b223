import { describe, expect, it } from "vitest";
import { toHex, utf8 } from "../../src/lib/bytes.ts";
import {
  deriveEnvelopeKeys,
  ENVELOPE_NONCE_HEADER,
  ENVELOPE_WINDOW_MS,
  EnvelopeError,
  type InvocationCall,
  openInvocation,
  pingMac,
  RESPONSE_MAC_HEADER,
  ReplayGuard,
  responseMac,
  sealInvocation,
  TIMESTAMP_HEADER,
  verifyResponseMac,
} from "../../src/lib/instance-envelope.ts";

const key = () => crypto.getRandomValues(new Uint8Array(32));
const call: InvocationCall = {
  invocationId: "0b5e1c36-3a57-4f0e-9a3b-5d1c2a7e9f10",
  method: "POST",
  path: "/chat_stream",
  query: "a=1",
  contentType: "application/json",
  body: utf8('{"model":"m","stream":true}'),
};

async function refusal(promise: Promise<unknown>): Promise<EnvelopeError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(EnvelopeError);
  return error as EnvelopeError;
}

describe("instance envelope", () => {
  it("round-trips a call: method, path, query, content type and body bytes", async () => {
    const keys = await deriveEnvelopeKeys(key(), "inst-1");
    const sealed = await sealInvocation(keys, call);
    expect(new TextDecoder().decode(sealed.body)).not.toContain("chat_stream");
    const opened = await openInvocation(keys, new Headers(sealed.headers), sealed.body, new ReplayGuard());
    expect(opened).toMatchObject({ ...call, body: call.body, nonce: sealed.nonce });
    expect(new TextDecoder().decode(opened.body)).toBe('{"model":"m","stream":true}');
  });

  it("refuses another instance's key, a tampered body and tampered headers with 401", async () => {
    const session = key();
    const keys = await deriveEnvelopeKeys(session, "inst-1");
    const sealed = await sealInvocation(keys, call);
    const guard = new ReplayGuard();
    // Same key, other instance id: the derived keys differ.
    const other = await deriveEnvelopeKeys(session, "inst-2");
    expect((await refusal(openInvocation(other, new Headers(sealed.headers), sealed.body, guard))).status).toBe(401);
    const flipped = sealed.body.slice();
    flipped[3] = (flipped[3] ?? 0) ^ 1;
    expect((await refusal(openInvocation(keys, new Headers(sealed.headers), flipped, guard))).status).toBe(401);
    const moved = new Headers(sealed.headers);
    moved.set(TIMESTAMP_HEADER, String(Number(sealed.headers[TIMESTAMP_HEADER]) + 1));
    expect((await refusal(openInvocation(keys, moved, sealed.body, guard))).status).toBe(401);
    // Nothing authentic was presented, so nothing was recorded and the original still opens.
    expect(guard.size).toBe(0);
    await openInvocation(keys, new Headers(sealed.headers), sealed.body, guard);
  });

  it("refuses a replayed envelope and one outside the time window", async () => {
    const keys = await deriveEnvelopeKeys(key(), "inst-1");
    const guard = new ReplayGuard();
    const sealed = await sealInvocation(keys, call);
    await openInvocation(keys, new Headers(sealed.headers), sealed.body, guard);
    const replay = await refusal(openInvocation(keys, new Headers(sealed.headers), sealed.body, guard));
    expect(replay.status).toBe(401);
    expect(replay.message).toMatch(/replayed/);
    const old = await sealInvocation(keys, call, Date.now() - ENVELOPE_WINDOW_MS - 1000);
    expect((await refusal(openInvocation(keys, new Headers(old.headers), old.body, guard))).status).toBe(401);
  });

  it("answers malformed headers with 400", async () => {
    const keys = await deriveEnvelopeKeys(key(), "inst-1");
    const sealed = await sealInvocation(keys, call);
    const bad = new Headers(sealed.headers);
    bad.set(ENVELOPE_NONCE_HEADER, "zz");
    expect((await refusal(openInvocation(keys, bad, sealed.body, new ReplayGuard()))).status).toBe(400);
    const noVersion = new Headers(sealed.headers);
    noVersion.delete("x-chutes-envelope");
    expect((await refusal(openInvocation(keys, noVersion, sealed.body, new ReplayGuard()))).status).toBe(400);
  });

  it("authenticates a response to its request: status, content type, nonce and instance", async () => {
    const keys = await deriveEnvelopeKeys(key(), "inst-1");
    const mac = await responseMac(keys, call.invocationId, "aa".repeat(12), 200, "text/event-stream");
    const response = (status: number, contentType: string, value = mac) => ({
      status,
      headers: new Headers({ "content-type": contentType, [RESPONSE_MAC_HEADER]: value }),
    });
    expect(await verifyResponseMac(keys, call.invocationId, "aa".repeat(12), response(200, "text/event-stream"))).toBe(
      true,
    );
    expect(await verifyResponseMac(keys, call.invocationId, "bb".repeat(12), response(200, "text/event-stream"))).toBe(
      false,
    );
    expect(await verifyResponseMac(keys, call.invocationId, "aa".repeat(12), response(500, "text/event-stream"))).toBe(
      false,
    );
    expect(await verifyResponseMac(keys, call.invocationId, "aa".repeat(12), response(200, "application/json"))).toBe(
      false,
    );
    expect(
      await verifyResponseMac(keys, call.invocationId, "aa".repeat(12), response(200, "text/event-stream", "00")),
    ).toBe(false);
    const stranger = await deriveEnvelopeKeys(key(), "inst-1");
    expect(
      await verifyResponseMac(stranger, call.invocationId, "aa".repeat(12), response(200, "text/event-stream")),
    ).toBe(false);
  });

  it("computes the ping MAC over the raw session key as the contract spells it", async () => {
    const session = new Uint8Array(32).fill(7);
    const hmac = await crypto.subtle.importKey("raw", session, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const expected = toHex(
      new Uint8Array(await crypto.subtle.sign("HMAC", hmac, utf8(`chutes-edge/ping/i-1/${"ab".repeat(16)}`))),
    );
    expect(await pingMac(session, "i-1", "ab".repeat(16))).toBe(expected);
  });
});
