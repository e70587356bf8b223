/**
 * The miner plane's routes inside workerd, against real Postgres and the real hub: the
 * shared security suite on every signed route (including another miner's node or instance),
 * node registration's validation (nothing half-registered), verification status, the
 * instance announce rules, the `/miner/*` SSE lists, and consecutive-failure removal with
 * its audit row, event and router refresh. The full verification flows run end to end in
 * test/e2e/miner-plane.test.ts (they need the GPU agent and a miner's servers).
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChuteRouter } from "../../durable-objects/chute-router.ts";
import { MAX_ATTEMPTS, type Verifier } from "../../durable-objects/verifier.ts";
import { openDatabase } from "../../src/db/client.ts";
import { instanceAudit, instances, nodes } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import { createLogger } from "../../src/lib/log.ts";
import type { NodeArgs } from "../../src/schemas/miner-plane.ts";
import { sealSessionKey } from "../../src/services/instance-keys.ts";
import { refreshChuteRouter } from "../../src/services/instance-routing.ts";
import {
  PROBE_BATCH,
  probeInstances,
  recordInstanceFailure,
  recordInstanceSuccess,
  sweepStuckInstances,
} from "../../src/services/instances.ts";
import { isRegisteredMiner } from "../../src/services/metagraph.ts";
import { sweepStuckNodes, VERIFICATION_LIMIT_MS } from "../../src/services/nodes.ts";
import { randomHotkey, type TestHotkey } from "../support/chutes-cli.ts";
import { h100Device, seedInstance, seedMinerAndChute, seedNodes } from "../support/miner-seed.ts";
import { registerMiner, type SignedRequest, sendSigned } from "./accounts.ts";
import { callHost, expectError } from "./helpers.ts";
import { connectMiner, isEvent } from "./miners.ts";
import { runCommonRouteTests } from "./route-security.ts";

const config = configFor(env);
const handle = openDatabase(config);
const db = handle.db;
afterAll(() => handle.close());

const json = (value: unknown) => JSON.stringify(value);

/** A GPU as a bootstrap pod reports it (an H100 SXM that passes upstream's checks). */
function gpu(overrides: Partial<NodeArgs> = {}): NodeArgs {
  return {
    ...h100Device(),
    device_index: 0,
    gpu_identifier: "h100_sxm",
    verification_host: "127.0.0.1",
    verification_port: 32_000,
    ...overrides,
  };
}

const registerNodes = (nodeList: NodeArgs[]): SignedRequest => ({
  method: "POST",
  path: "/nodes/",
  body: json({ nodes: nodeList }),
});

let chute: { chuteId: string; version: string };
beforeAll(async () => {
  chute = await seedMinerAndChute(db, randomHotkey().ss58, { uid: -7 });
});

const randomUuid32 = () => crypto.randomUUID().replaceAll("-", "");

/**
 * A verified GPU of `hotkey` (and an instance on it), for the suite's valid requests. The
 * suite also builds requests for a hotkey that is not registered (refused before any
 * lookup): those get ids of nothing, since no row can belong to an unregistered hotkey.
 */
async function ownedBy(hotkey: string, options: { instance?: boolean; status?: "verifying"; taskId?: string } = {}) {
  if (!(await isRegisteredMiner(db, hotkey, config.NETUID))) {
    return { uuid: randomUuid32(), instanceId: crypto.randomUUID() };
  }
  const [uuid = ""] = await seedNodes(db, hotkey, { status: options.status, taskId: options.taskId });
  const instanceId = options.instance ? await seedInstance(db, { ...chute, minerHotkey: hotkey, nodeIds: [uuid] }) : "";
  return { uuid, instanceId };
}

/** Seeds a verified GPU (and an instance on it, when asked) for a freshly registered miner. */
async function minerWith(options: { instance?: boolean; verified?: boolean } = {}) {
  const key = await registerMiner();
  const [uuid = ""] = await seedNodes(db, key.ss58);
  const instanceId = options.instance
    ? await seedInstance(db, {
        ...chute,
        minerHotkey: key.ss58,
        nodeIds: [uuid],
        verified: options.verified,
        walletKey: config.WALLET_KEY,
      })
    : "";
  return { key, uuid, instanceId };
}

// Every signed route: valid requests reach the handler (a 400 from node validation proves
// the signature passed: registering for real would start a verification with no agent).
runCommonRouteTests({
  name: "POST /nodes/",
  actor: "miner",
  okStatus: 400,
  request: () => registerNodes([gpu({ name: "NVIDIA GeForce GTX 1080" })]),
});

runCommonRouteTests({
  name: "GET /nodes/verification_status",
  actor: "miner",
  request: async (user) => {
    const taskId = `${user.hotkey.ss58}::${crypto.randomUUID()}`;
    await ownedBy(user.hotkey.ss58, { status: "verifying", taskId });
    return {
      method: "GET",
      path: `/nodes/verification_status?task_id=${encodeURIComponent(taskId)}`,
      purpose: "graval",
    };
  },
  foreignRequest: async () => {
    const owner = await registerMiner();
    const taskId = `${owner.ss58}::${crypto.randomUUID()}`;
    await seedNodes(db, owner.ss58, { taskId });
    return {
      method: "GET",
      path: `/nodes/verification_status?task_id=${encodeURIComponent(taskId)}`,
      purpose: "graval",
    };
  },
});

runCommonRouteTests({
  name: "DELETE /nodes/{uuid}",
  actor: "miner",
  request: async (user) => {
    const { uuid } = await ownedBy(user.hotkey.ss58);
    return { method: "DELETE", path: `/nodes/${uuid}`, purpose: "nodes" };
  },
  foreignRequest: async () => {
    const { uuid } = await minerWith();
    return { method: "DELETE", path: `/nodes/${uuid}`, purpose: "nodes" };
  },
});

runCommonRouteTests({
  name: "POST /instances/{chute_id}/",
  actor: "miner",
  okStatus: 202,
  request: async (user) => {
    const { uuid } = await ownedBy(user.hotkey.ss58);
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    return {
      method: "POST",
      path: `/instances/${chute.chuteId}/`,
      body: json({ node_ids: [uuid], host: "127.0.0.1", port }),
    };
  },
  foreignRequest: async () => {
    const { uuid } = await minerWith();
    return {
      method: "POST",
      path: `/instances/${chute.chuteId}/`,
      body: json({ node_ids: [uuid], host: "127.0.0.1", port: 20_001 }),
    };
  },
});

runCommonRouteTests({
  name: "PATCH /instances/{chute_id}/{instance_id}",
  actor: "miner",
  request: async (user) => {
    const { instanceId: id } = await ownedBy(user.hotkey.ss58, { instance: true });
    return { method: "PATCH", path: `/instances/${chute.chuteId}/${id}`, body: json({ active: true }) };
  },
  foreignRequest: async () => {
    const { instanceId } = await minerWith({ instance: true });
    return { method: "PATCH", path: `/instances/${chute.chuteId}/${instanceId}`, body: json({ active: true }) };
  },
});

runCommonRouteTests({
  name: "DELETE /instances/{chute_id}/{instance_id}",
  actor: "miner",
  request: async (user) => {
    const { instanceId: id } = await ownedBy(user.hotkey.ss58, { instance: true });
    return { method: "DELETE", path: `/instances/${chute.chuteId}/${id}`, purpose: "instances" };
  },
  foreignRequest: async () => {
    const { instanceId } = await minerWith({ instance: true });
    return { method: "DELETE", path: `/instances/${chute.chuteId}/${instanceId}`, purpose: "instances" };
  },
});

for (const list of ["chutes", "images", "nodes", "instances", "metrics"]) {
  runCommonRouteTests({
    name: `GET /miner/${list}/`,
    actor: "miner",
    okContentType: /^text\/event-stream/,
    request: () => ({ method: "GET", path: `/miner/${list}/`, purpose: "miner" }),
  });
}

describe("public node routes", () => {
  it("GET /nodes/supported lists upstream's table; GET /nodes/ counts verified GPUs, provisioned or idle", async () => {
    const supported = (await (await callHost("api.localhost", "/nodes/supported")).json()) as Record<
      string,
      { processors: number; clock_rate: { base: number; boost: number } }
    >;
    expect(supported.h100_sxm).toMatchObject({ processors: 132, clock_rate: { base: 1590, boost: 1980 } });
    const before = (await (await callHost("api.localhost", "/nodes/")).json()) as Record<
      string,
      { provisioned: number; idle: number }
    >;
    await minerWith({ instance: true });
    await minerWith();
    const key = await registerMiner();
    await seedNodes(db, key.ss58, { status: "failed" });
    const after = (await (await callHost("api.localhost", "/nodes/")).json()) as typeof before;
    expect(after.h100_sxm?.provisioned).toBe((before.h100_sxm?.provisioned ?? 0) + 1);
    expect(after.h100_sxm?.idle).toBe((before.h100_sxm?.idle ?? 0) + 1);
  });
});

describe("POST /nodes/: validation, all or nothing", () => {
  let key: TestHotkey;
  beforeAll(async () => {
    key = await registerMiner();
  });

  it.each([
    ["an unsupported GPU", { name: "NVIDIA GeForce GTX 1080" }, /not a supported GPU/],
    ["a gpu_identifier the name does not match", { gpu_identifier: "h200" }, /does not match the device name/],
    ["too little memory", { memory: 40_000_000_000 }, /memory 40 GB is outside 79–86 GB/],
    ["the wrong SM count", { processors: 114 }, /processors 114 is not 132/],
    ["the wrong compute capability", { major: 8 }, /compute capability 8.0 is not 9.0/],
    ["a clock out of range", { clock_rate: 3_000_000 }, /clock_rate 3000 MHz is outside/],
    ["a private verification host", { verification_host: "10.0.0.7" }, /10.0.0.7 is a private address/],
    ["a link-local verification host", { verification_host: "169.254.169.254" }, /link-local/],
    ["an unresolvable name", { verification_host: "no_such host" }, /neither an IP address nor a valid DNS name/],
  ])("refuses %s with 400 and registers nothing", async (_, overrides, detail) => {
    const good = gpu();
    const bad = gpu({ device_index: 1, ...overrides });
    const body = await expectError(await sendSigned(key, registerNodes([good, bad])), 400, "bad_request");
    expect(body.detail).toMatch(detail);
    expect(await db.select().from(nodes).where(eq(nodes.uuid, good.uuid))).toEqual([]);
  });

  it("refuses fractional clocks, unknown fields, more than 10 GPUs and a GPU listed twice", async () => {
    await expectError(
      await sendSigned(key, registerNodes([gpu({ clock_rate: 1_980_000.5 })])),
      422,
      "validation_failed",
    );
    const extra = { ...gpu(), shoe_size: 44 };
    await expectError(await sendSigned(key, registerNodes([extra as NodeArgs])), 422, "validation_failed");
    const eleven = Array.from({ length: 11 }, (_, i) => gpu({ device_index: i % 10 }));
    await expectError(await sendSigned(key, registerNodes(eleven)), 422, "validation_failed");
    const twice = gpu();
    const res = await sendSigned(key, registerNodes([twice, { ...twice, device_index: 1 }]));
    expect((await expectError(res, 400, "bad_request")).detail).toMatch(/appears twice/);
  });

  it("answers 409 for a GPU already registered (by anyone), keeping the new ones out too", async () => {
    const { uuid } = await minerWith();
    const fresh = gpu();
    const res = await sendSigned(key, registerNodes([fresh, gpu({ uuid, device_index: 1 })]));
    expect((await expectError(res, 409, "conflict")).detail).toMatch(new RegExp(`already exist.*${uuid}`));
    expect(await db.select().from(nodes).where(eq(nodes.uuid, fresh.uuid))).toEqual([]);
  });

  it("reports a failed task with its reason, and an unknown one as 404", async () => {
    const taskId = `${key.ss58}::${crypto.randomUUID()}`;
    const [uuid = ""] = await seedNodes(db, key.ss58, { status: "failed", taskId });
    await db.update(nodes).set({ verificationError: "wrong plaintext" }).where(eq(nodes.uuid, uuid));
    const path = (id: string) => `/nodes/verification_status?task_id=${encodeURIComponent(id)}`;
    const res = await sendSigned(key, { method: "GET", path: path(taskId), purpose: "graval" });
    expect(await res.json()).toEqual({ status: "failed", detail: `GPU ${uuid}: wrong plaintext` });
    const unknown = await sendSigned(key, { method: "GET", path: path(`${key.ss58}::nope`), purpose: "graval" });
    await expectError(unknown, 404, "not_found");
  });
});

describe("POST /instances/{chute_id}/: upstream's checks as clear 4xx", () => {
  const announce = (key: TestHotkey, body: Record<string, unknown>, chuteId = chute.chuteId) =>
    sendSigned(key, { method: "POST", path: `/instances/${chuteId}/`, body: json(body) });
  const port = () => 20_000 + Math.floor(Math.random() * 40_000);

  it("404 for an unknown chute or another miner's GPU; 400 for an unverified GPU, the wrong count or a private host", async () => {
    const { key, uuid } = await minerWith();
    await expectError(
      await announce(key, { node_ids: [uuid], host: "127.0.0.1", port: port() }, "nope"),
      404,
      "not_found",
    );
    const other = await minerWith();
    await expectError(
      await announce(key, { node_ids: [other.uuid], host: "127.0.0.1", port: port() }),
      404,
      "not_found",
    );
    const [pending] = await seedNodes(db, key.ss58, { status: "verifying" });
    const unverified = await announce(key, { node_ids: [pending], host: "127.0.0.1", port: port() });
    expect((await expectError(unverified, 400, "bad_request")).detail).toMatch(/not verified/);
    const [second] = await seedNodes(db, key.ss58);
    const two = await announce(key, { node_ids: [uuid, second], host: "127.0.0.1", port: port() });
    expect((await expectError(two, 400, "bad_request")).detail).toMatch(/needs 1 GPU/);
    const privateHost = await announce(key, { node_ids: [uuid], host: "192.168.1.10", port: port() });
    expect((await expectError(privateHost, 400, "bad_request")).detail).toMatch(/private address/);
  });

  it("409 when the GPU is in another instance or the host:port is taken; the session key never shows", async () => {
    const { key, uuid } = await minerWith();
    const p = port();
    const first = await announce(key, { node_ids: [uuid], host: "127.0.0.1", port: p });
    expect(first.status).toBe(202);
    const body = (await first.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ active: false, verified: false, nodes: [uuid] });
    expect(body).not.toHaveProperty("session_key");
    await expectError(await announce(key, { node_ids: [uuid], host: "127.0.0.1", port: port() }), 409, "conflict");
    const [other] = await seedNodes(db, key.ss58);
    await expectError(await announce(key, { node_ids: [other], host: "127.0.0.1", port: p }), 409, "conflict");
  });
});

describe("the /miner/* lists", () => {
  it("send one JSON object per data: line, scoped to the caller; NO_ITEMS only when asked", async () => {
    const { key, uuid, instanceId } = await minerWith({ instance: true });
    await minerWith({ instance: true }); // another miner's: not listed
    const read = async (path: string) => {
      const res = await sendSigned(key, { method: "GET", path, purpose: "miner" });
      expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
      return res.text();
    };
    const nodesText = await read("/miner/nodes/");
    expect(
      nodesText
        .split("\n\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l.replace(/^data: /, ""))),
    ).toMatchObject([{ uuid, status: "verified", miner_hotkey: key.ss58 }]);
    const instancesText = await read("/miner/instances/");
    expect(instancesText).toMatch(new RegExp(`^data: \\{"instance_id":"${instanceId}"`));
    expect(instancesText).not.toMatch(/session_key/);
    expect(instancesText.trim().split("\n").filter(Boolean)).toHaveLength(1);

    const empty = await registerMiner();
    const none = await sendSigned(empty, { method: "GET", path: "/miner/nodes/", purpose: "miner" });
    expect(await none.text()).toBe("");
    const sentinel = await sendSigned(empty, {
      method: "GET",
      path: "/miner/nodes/?explicit_null=true",
      purpose: "miner",
    });
    expect(await sentinel.text()).toBe("data: NO_ITEMS\n\n");
  });
});

describe("consecutive failures", () => {
  const deps = { db, config, log: createLogger("error"), now: () => new Date() };
  const router = () => {
    const ns = config.CHUTE_ROUTER as unknown as DurableObjectNamespace<ChuteRouter>;
    return ns.get(ns.idFromName(chute.chuteId));
  };

  it("a success resets the count; the limit removes the instance, audited, announced to its miner, out of the router", async () => {
    const { key, instanceId } = await minerWith({ instance: true });
    const socket = await connectMiner(key);
    await refreshChuteRouter(deps, chute.chuteId);
    expect((await router().snapshot()).map((s) => s.instanceId)).toContain(instanceId);

    expect(await recordInstanceFailure(deps, instanceId, "boom")).toEqual({ failures: 1, removed: false });
    await recordInstanceSuccess(deps, instanceId);
    const [reset] = await db.select().from(instances).where(eq(instances.instanceId, instanceId));
    expect(reset?.consecutiveFailures).toBe(0);

    for (let i = 1; i < config.INSTANCE_FAILURE_LIMIT; i++) {
      expect(await recordInstanceFailure(deps, instanceId, "boom")).toEqual({ failures: i, removed: false });
    }
    const last = await recordInstanceFailure(deps, instanceId, "connection refused");
    expect(last).toEqual({ failures: config.INSTANCE_FAILURE_LIMIT, removed: true });
    expect(await recordInstanceFailure(deps, instanceId, "late")).toBeNull();
    expect(await db.select().from(instances).where(eq(instances.instanceId, instanceId))).toEqual([]);
    const [audit] = await db.select().from(instanceAudit).where(eq(instanceAudit.instanceId, instanceId));
    expect(audit?.deletionReason).toBe(
      `${config.INSTANCE_FAILURE_LIMIT} consecutive failures (last: connection refused)`,
    );
    const event = await socket.frames.until(isEvent("instance_deleted", { instance_id: instanceId }));
    expect(event.data?.reason).toMatch(/consecutive failures/);
    expect((await router().snapshot()).map((s) => s.instanceId)).not.toContain(instanceId);
    socket.ws.close();
  });
});

describe("nothing stays stuck: sweeps and health probes", () => {
  const at = (offsetMs: number) => ({
    db,
    config,
    log: createLogger("error"),
    now: () => new Date(Date.now() + offsetMs),
  });

  it("fails GPUs still verifying after the limit, and only those", async () => {
    const key = await registerMiner();
    const [stuck = ""] = await seedNodes(db, key.ss58, { status: "verifying" });
    expect(await sweepStuckNodes(at(VERIFICATION_LIMIT_MS - 60_000))).toBe(0);
    expect(await sweepStuckNodes(at(VERIFICATION_LIMIT_MS + 60_000))).toBeGreaterThanOrEqual(1);
    const [row] = await db.select().from(nodes).where(eq(nodes.uuid, stuck));
    expect(row).toMatchObject({ status: "failed", verificationError: expect.stringMatching(/did not finish in time/) });
  });

  it("removes an instance whose verification never finished, with the reason", async () => {
    const key = await registerMiner();
    const [uuid = ""] = await seedNodes(db, key.ss58);
    const id = await seedInstance(db, { ...chute, minerHotkey: key.ss58, nodeIds: [uuid], verified: false });
    await db.update(instances).set({ active: true }).where(eq(instances.instanceId, id));
    expect(await sweepStuckInstances(at(0), VERIFICATION_LIMIT_MS)).toBe(0);
    expect(await sweepStuckInstances(at(VERIFICATION_LIMIT_MS + 60_000), VERIFICATION_LIMIT_MS)).toBeGreaterThanOrEqual(
      1,
    );
    const [audit] = await db.select().from(instanceAudit).where(eq(instanceAudit.instanceId, id));
    expect(audit?.deletionReason).toBe("verification did not finish in time");
  });

  it("a probe of an instance that does not answer counts a failure", async () => {
    const key = await registerMiner();
    const [uuid = ""] = await seedNodes(db, key.ss58);
    // Port 9 (discard) on loopback: nothing listens, the ping fails at once.
    const id = await seedInstance(db, { ...chute, minerHotkey: key.ss58, nodeIds: [uuid], port: 9 });
    const sealed = await sealSessionKey(crypto.getRandomValues(new Uint8Array(32)), config.WALLET_KEY, id);
    await db.update(instances).set({ sessionKey: sealed }).where(eq(instances.instanceId, id));
    // One round probes up to PROBE_BATCH instances: this file seeds fewer, so ours is among them.
    const routable = await db.select({ id: instances.instanceId }).from(instances).where(eq(instances.verified, true));
    expect(routable.length).toBeLessThanOrEqual(PROBE_BATCH);
    const round = await probeInstances(at(0));
    expect(round.probed).toBeGreaterThanOrEqual(1);
    expect(round.failed).toBeGreaterThanOrEqual(1);
    const [row] = await db.select().from(instances).where(eq(instances.instanceId, id));
    expect(row?.consecutiveFailures).toBe(1);
  });
});

describe("the Verifier Durable Object", () => {
  const verifier = (name: string) => {
    const ns = config.VERIFIER as unknown as DurableObjectNamespace<Verifier>;
    return ns.get(ns.idFromName(name));
  };

  /** The alarm set for "now" fires on its own: wait for the job to finish. */
  const settled = async (stub: DurableObjectStub<Verifier>) => {
    const until = Date.now() + 10_000;
    for (;;) {
      const job = await stub.job();
      if (job?.state === "done" || Date.now() > until) return job;
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it("starts a verification once, however often it is asked", async () => {
    // A task with nothing left to verify finishes at once (no agent needed).
    const taskId = `nobody::${crypto.randomUUID()}`;
    const stub = verifier(`nodes:${taskId}`);
    expect(await stub.start("nodes", taskId)).toBe(true);
    expect(await stub.start("nodes", taskId)).toBe(false);
    expect(await settled(stub)).toMatchObject({
      kind: "nodes",
      id: taskId,
      state: "done",
      outcome: "none",
      attempts: 1,
    });
    expect(await stub.start("nodes", taskId)).toBe(false);
    expect(await runDurableObjectAlarm(stub)).toBe(false);
  });

  it("gives up after repeated interrupted runs, failing the GPUs with a reason", async () => {
    const key = await registerMiner();
    const taskId = `${key.ss58}::${crypto.randomUUID()}`;
    const [uuid = ""] = await seedNodes(db, key.ss58, { status: "verifying", taskId });
    const stub = verifier(`nodes:${taskId}`);
    await runInDurableObject(stub, async (_instance: Verifier, state) => {
      await state.storage.put("job", { kind: "nodes", id: taskId, attempts: MAX_ATTEMPTS, state: "running" });
      await state.storage.setAlarm(Date.now());
    });
    expect(await settled(stub)).toMatchObject({ state: "done", outcome: "given up", attempts: MAX_ATTEMPTS + 1 });
    const [row] = await db.select().from(nodes).where(eq(nodes.uuid, uuid));
    expect(row).toMatchObject({ status: "failed", verificationError: expect.stringMatching(/interrupted 3 times/) });
  });
});
