import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ChuteRouter } from "../../durable-objects/chute-router.ts";
import type { EventsHub } from "../../durable-objects/events-hub.ts";
import { configFor } from "../../src/env.ts";
import { EVENTS_HUB_NAME } from "../../src/hosts/sockets.ts";
import { acquireLease, releaseLease } from "../../src/services/instance-routing.ts";
import { callHost, nextFrames } from "./helpers.ts";

const config = configFor(env);

async function openSocket(host: string): Promise<WebSocket> {
  const res = await callHost(host, "/", { headers: { upgrade: "websocket" } });
  expect(res.status).toBe(101);
  const ws = res.webSocket;
  if (!ws) throw new Error("no WebSocket on the 101 response");
  ws.accept();
  return ws;
}

describe("events hub", () => {
  it("delivers a published event to a subscriber", async () => {
    const ws = await openSocket("events.localhost");
    const hub = config.EVENTS_HUB.get(config.EVENTS_HUB.idFromName(EVENTS_HUB_NAME)) as DurableObjectStub<EventsHub>;
    const frame = nextFrames(ws, 1);
    const delivered = await hub.publish({ reason: "instance_created", data: { instance_id: "i-1" } });
    expect(delivered).toBeGreaterThanOrEqual(1);
    expect((await frame)[0]).toEqual({ type: "event", reason: "instance_created", data: { instance_id: "i-1" } });
    ws.close(1000);
  });
});

describe("chute router", () => {
  const instance = (id: string, maxConcurrency: number) => ({
    instanceId: id,
    host: "127.0.0.1",
    port: 9000,
    maxConcurrency,
    minerUid: 1,
    minerHotkey: "5Cfv7fcjhtGaQEjdKEHfxgRpS97TLUqmRjeXwTtYUk8S7eui",
    sealedSessionKey: "v1:00:00",
  });
  const newRouter = async (instances: ReturnType<typeof instance>[]) => {
    const chuteId = crypto.randomUUID();
    const router = config.CHUTE_ROUTER.get(config.CHUTE_ROUTER.idFromName(chuteId)) as DurableObjectStub<ChuteRouter>;
    await router.setInstances(instances);
    return {
      router,
      acquire: (options: { exclude?: string[]; leaseMs?: number } = {}) => router.acquire({ chuteId, ...options }),
    };
  };

  it("loads a cold router from Postgres (a chute with no instances has none)", async () => {
    const chuteId = crypto.randomUUID();
    const router = config.CHUTE_ROUTER.get(config.CHUTE_ROUTER.idFromName(chuteId)) as DurableObjectStub<ChuteRouter>;
    expect(await router.acquire({ chuteId })).toEqual({ ok: false, reason: "no_instances" });
  });

  it("leases the least-loaded instance and respects the concurrency cap", async () => {
    const { router, acquire } = await newRouter([instance("a", 1), instance("b", 2)]);
    const first = await acquire();
    const second = await acquire();
    const third = await acquire();
    if (!first.ok || !second.ok || !third.ok) throw new Error("expected three leases");
    // a and b start at 0; after one each, only b has room.
    expect(new Set([first.instance.instanceId, second.instance.instanceId])).toEqual(new Set(["a", "b"]));
    expect(third.instance.instanceId).toBe("b");
    expect(await acquire()).toEqual({ ok: false, reason: "at_capacity" });

    await router.release(first.leaseId);
    await router.release(first.leaseId); // idempotent
    const fourth = await acquire();
    expect(fourth.ok && fourth.instance.instanceId).toBe(first.instance.instanceId);
  });

  it("expires leases whose release never comes", async () => {
    const { acquire } = await newRouter([instance("only", 1)]);
    expect((await acquire({ leaseMs: 50 })).ok).toBe(true);
    expect(await acquire({ leaseMs: 50 })).toEqual({ ok: false, reason: "at_capacity" });
    await new Promise((r) => setTimeout(r, 80));
    expect((await acquire({ leaseMs: 50 })).ok).toBe(true);
  });

  it("hands waiting releases to the next acquire (one RPC), or sends them alone when none comes", async () => {
    const chuteId = crypto.randomUUID();
    const router = config.CHUTE_ROUTER.get(config.CHUTE_ROUTER.idFromName(chuteId)) as DurableObjectStub<ChuteRouter>;
    await router.setInstances([instance("only", 1)]);
    const first = await acquireLease(config, chuteId, {});
    if (!first.ok) throw new Error("no lease");
    // The release waits in this isolate; the next acquire carries it, so the slot is free again.
    const released = releaseLease(config, chuteId, first.leaseId, "success");
    const second = await acquireLease(config, chuteId, {});
    expect(second.ok).toBe(true);
    await released;
    if (!second.ok) throw new Error("no lease");
    // With no acquire after it, a release goes on its own within the batch window.
    await releaseLease(config, chuteId, second.leaseId, "success");
    expect((await router.snapshot())[0]).toMatchObject({ instanceId: "only", inFlight: 0 });
  });

  it("skips instances a request already tried, and sets aside an instance after failures in a row", async () => {
    const { router, acquire } = await newRouter([instance("a", 5), instance("b", 5)]);
    const first = await acquire({ exclude: ["a"] });
    expect(first.ok && first.instance.instanceId).toBe("b");
    expect(await acquire({ exclude: ["a", "b"] })).toEqual({ ok: false, reason: "no_instances" });
    if (!first.ok) throw new Error("no lease");
    await router.release(first.leaseId, "failure");
    // One failure is not enough; a second in a row sets b aside.
    const again = await acquire({ exclude: ["a"] });
    if (!again.ok) throw new Error("no lease");
    await router.release(again.leaseId, "failure");
    expect(await acquire({ exclude: ["a"] })).toEqual({ ok: false, reason: "no_instances" });
    const state = await router.snapshot();
    expect(state.find((s) => s.instanceId === "b")).toMatchObject({
      setAside: true,
      consecutiveFailures: 2,
      inFlight: 0,
    });
    // A neutral outcome (client gone) changes nothing; only a success clears the count.
    const onA = await acquire();
    expect(onA.ok && onA.instance.instanceId).toBe("a");
  });
});
