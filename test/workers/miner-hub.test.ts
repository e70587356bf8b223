/**
 * The miner socket protocol (docs/protocols.md, "Miner socket") with real WebSockets into
 * the real MinerHub through the Worker: authentication before the upgrade, ping/pong,
 * several sockets per hotkey, targeted and broadcast events, resume and resync, state that
 * survives the object being rebuilt, quiet closes.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { EVENT_BUFFER_SIZE, MINER_HOTKEY_HEADER, MinerHub } from "../../durable-objects/miner-hub.ts";
import { configFor } from "../../src/env.ts";
import { createLogger } from "../../src/lib/log.ts";
import { publishMinerEvent } from "../../src/services/miner-events.ts";
import { randomHotkey } from "../support/chutes-cli.ts";
import { registerMiner, sendSigned } from "./accounts.ts";
import { callHost, expectError } from "./helpers.ts";
import { connectMiner, type Frame, isEvent, minerHub, SOCKET_HOST, socketRequest } from "./miners.ts";
import { runCommonRouteTests } from "./route-security.ts";

const config = configFor(env);
const deps = { config, log: createLogger("error") };
const chuteEvent = (chuteId: string) =>
  ({ reason: "chute_created", data: { chute_id: chuteId, version: "v1" } }) as const;

runCommonRouteTests({
  name: "GET socket.{domain}/ (miner socket upgrade)",
  actor: "miner",
  okStatus: 101,
  request: () => socketRequest(),
});

describe("miner socket: connecting", () => {
  it("answers a plain HTTP request 426 before looking at credentials", async () => {
    await expectError(await callHost(SOCKET_HOST, "/"), 426, "upgrade_required");
    await expectError(await callHost("ws.localhost", "/"), 426, "upgrade_required");
  });

  it("greets with the hub's current seq and the oldest it can replay", async () => {
    const key = await registerMiner();
    const { ws, hello } = await connectMiner(key);
    const seq = await minerHub().currentSeq();
    expect(hello).toEqual({
      type: "hello",
      seq,
      data: { hotkey: key.ss58, connected_at: expect.any(Number), oldest_seq: expect.any(Number) },
    });
    ws.close(1000);
  });

  it("refuses a hotkey registered on another subnet (401)", async () => {
    const key = await registerMiner(randomHotkey(), config.NETUID + 1);
    await expectError(await sendSigned(key, socketRequest()), 401, "unauthorized");
  });

  it("ignores a hotkey header the client sends for the hub: the socket is the signer's", async () => {
    const [key, victim] = await Promise.all([registerMiner(), registerMiner()]);
    const { ws, frames } = await connectMiner(key, { headers: { [MINER_HOTKEY_HEADER]: victim.ss58 } });
    expect((await minerHub().connections(victim.ss58)).length).toBe(0);
    expect(await minerHub().connections(key.ss58)).toEqual([{ hotkey: key.ss58, connectedAt: expect.any(Number) }]);
    const chuteId = crypto.randomUUID();
    await publishMinerEvent(deps, { ...chuteEvent(chuteId), recipients: [victim.ss58] });
    await frames.none(isEvent("chute_created", { chute_id: chuteId }));
    ws.close(1000);
  });

  it("refuses an upgrade that reaches the hub without the Worker's authentication", async () => {
    const res = await minerHub().fetch(new Request("http://hub/", { headers: { upgrade: "websocket" } }));
    expect(res.status).toBe(401);
  });
});

describe("miner socket: frames", () => {
  it("answers pings (the literal ping by the runtime) and explains bad frames", async () => {
    const { ws, frames } = await connectMiner(await registerMiner());
    ws.send(JSON.stringify({ type: "ping" }));
    expect(await frames.next()).toEqual([{ type: "pong" }]);
    ws.send(JSON.stringify({ type: "ping", seq: 7 }));
    expect(await frames.next()).toEqual([{ type: "pong", seq: 7 }]);
    ws.send("not json");
    ws.send(JSON.stringify({ type: "dance" }));
    ws.send(JSON.stringify({ type: "resume", seq: -1 }));
    const errors = await frames.next(3);
    expect(errors.map((frame) => frame.type)).toEqual(["error", "error", "error"]);
    expect(errors[1]?.reason).toMatch(/unknown frame type "dance"/);
    expect(errors[2]?.reason).toMatch(/resume needs `seq`/);
    ws.close(1000);
  });

  it("delivers broadcasts to every socket, and targeted events only to their hotkeys' sockets", async () => {
    const [a, b] = await Promise.all([registerMiner(), registerMiner()]);
    const [a1, a2, b1] = await Promise.all([connectMiner(a), connectMiner(a), connectMiner(b)]);
    expect((await minerHub().connections(a.ss58)).length).toBe(2);

    const broadcastId = crypto.randomUUID();
    const broadcast = await publishMinerEvent(deps, chuteEvent(broadcastId));
    expect(broadcast?.delivered).toBeGreaterThanOrEqual(3);
    for (const socket of [a1, a2, b1]) {
      const frame = await socket.frames.until(isEvent("chute_created", { chute_id: broadcastId }));
      expect(frame).toEqual({
        type: "event",
        seq: broadcast?.seq,
        reason: "chute_created",
        data: { chute_id: broadcastId, version: "v1" },
      });
    }

    const targeted = await publishMinerEvent(deps, {
      reason: "gpu_verified",
      data: { gpu_id: "gpu-1", miner_hotkey: a.ss58 },
      recipients: [a.ss58],
    });
    expect(targeted).toEqual({ seq: (broadcast?.seq ?? 0) + 1, delivered: 2 });
    for (const socket of [a1, a2]) {
      expect(await socket.frames.until(isEvent("gpu_verified"))).toMatchObject({ seq: targeted?.seq });
    }
    await b1.frames.none(isEvent("gpu_verified"));
    for (const socket of [a1, a2, b1]) socket.ws.close(1000);
  });

  it("reciprocates closes quietly, reserved codes included, and forgets the socket", async () => {
    const key = await registerMiner();
    const first = await connectMiner(key);
    first.ws.close(4001, "going away");
    expect(await first.frames.closed).toEqual({ code: 4001, reason: "going away" });
    const second = await connectMiner(key);
    // A bare close() is 1005 on the hub's side, which may not be echoed: it answers 1000.
    second.ws.close();
    expect((await second.frames.closed).code).toBeGreaterThanOrEqual(1000);
    await expect.poll(async () => (await minerHub().connections(key.ss58)).length).toBe(0);
  });
});

describe("miner socket: resume", () => {
  it("replays what a miner missed while away, in order and only what was meant for it, then goes live", async () => {
    const [key, other] = await Promise.all([registerMiner(), registerMiner()]);
    const first = await connectMiner(key);
    const seen = await publishMinerEvent(deps, chuteEvent(crypto.randomUUID()));
    await first.frames.until((frame) => frame.seq === seen?.seq);
    first.ws.close(1000);
    await first.frames.closed;

    const missed = [crypto.randomUUID(), crypto.randomUUID()];
    const one = await publishMinerEvent(deps, chuteEvent(missed[0] ?? ""));
    const theirs = await publishMinerEvent(deps, { ...chuteEvent(crypto.randomUUID()), recipients: [other.ss58] });
    const mine = await publishMinerEvent(deps, {
      reason: "instance_verified",
      data: { instance_id: "i-1", miner_hotkey: key.ss58 },
      recipients: [key.ss58],
    });
    const two = await publishMinerEvent(deps, chuteEvent(missed[1] ?? ""));

    const back = await connectMiner(key, { since: seen?.seq });
    const replayed: Frame[] = [];
    for (;;) {
      const [frame] = await back.frames.next();
      if (!frame || frame.type === "resumed") {
        expect(frame).toMatchObject({ type: "resumed", seq: back.hello.seq, data: { since: seen?.seq } });
        break;
      }
      replayed.push(frame);
    }
    const seqs = replayed.map((frame) => frame.seq ?? 0);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(seqs).toEqual(expect.arrayContaining([one?.seq, mine?.seq, two?.seq]));
    expect(
      replayed.filter((frame) => frame.data?.chute_id && missed.includes(String(frame.data.chute_id))),
    ).toHaveLength(2);
    expect(seqs).not.toContain(theirs?.seq);

    const live = await publishMinerEvent(deps, chuteEvent(crypto.randomUUID()));
    expect(await back.frames.until((frame) => frame.type === "event")).toMatchObject({ seq: live?.seq });
    back.ws.close(1000);
  });

  it("replays on a resume frame up to where the socket joined", async () => {
    const key = await registerMiner();
    const before = await publishMinerEvent(deps, chuteEvent(crypto.randomUUID()));
    const socket = await connectMiner(key);
    socket.ws.send(JSON.stringify({ type: "resume", seq: (before?.seq ?? 1) - 1 }));
    const [replayed, resumed] = await socket.frames.next(2);
    expect(replayed).toMatchObject({ type: "event", seq: before?.seq });
    expect(resumed).toEqual({
      type: "resumed",
      seq: socket.hello.seq,
      data: { since: (before?.seq ?? 1) - 1, replayed: 1 },
    });
    socket.ws.close(1000);
  });

  it("asks for a resync when the gap is older than the buffer, or the seq is from another history", async () => {
    const key = await registerMiner();
    const start = await minerHub().currentSeq();
    await runInDurableObject(minerHub(), async (hub: MinerHub) => {
      for (let i = 0; i <= EVENT_BUFFER_SIZE; i++) await hub.publish(chuteEvent(`flood-${i}`));
    });
    const stale = await connectMiner(key, { since: start });
    expect(await stale.frames.next()).toEqual([
      { type: "resync_required", seq: stale.hello.seq, reason: expect.stringMatching(/no longer buffered/) },
    ]);
    const ahead = await connectMiner(key, { since: (stale.hello.seq ?? 0) + 100 });
    expect(await ahead.frames.next()).toEqual([
      { type: "resync_required", seq: ahead.hello.seq, reason: expect.stringMatching(/ahead of this hub/) },
    ]);
    const recent = await connectMiner(key, { since: (stale.hello.seq ?? 0) - 2 });
    const frames = await recent.frames.next(3);
    expect(frames.map((frame) => frame.type)).toEqual(["event", "event", "resumed"]);
    for (const socket of [stale, ahead, recent]) socket.ws.close(1000);
  });
});

describe("miner socket: hibernation", () => {
  it("keeps everything it needs in attachments and storage, so a rebuilt object knows every socket", async () => {
    const key = await registerMiner();
    const socket = await connectMiner(key);
    await runInDurableObject(minerHub(), async (hub: MinerHub, state) => {
      const [ws] = state.getWebSockets(`hk:${key.ss58}`);
      expect(ws?.deserializeAttachment()).toEqual({
        hotkey: key.ss58,
        connectedAt: expect.any(Number),
        joinedSeq: socket.hello.seq,
      });
      // What waking from hibernation does: a new instance over the same state.
      const rebuilt = new MinerHub(state, env);
      expect(await rebuilt.currentSeq()).toBe(await hub.currentSeq());
      expect(await rebuilt.connections(key.ss58)).toEqual(await hub.connections(key.ss58));
    });
    socket.ws.close(1000);
  });
});
