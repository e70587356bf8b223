/**
 * The miner plane end to end against a real `npm start` (its CPU GPU agent, the tiny proof
 * profile, loopback miners allowed): a simulated miner connects its socket, registers a
 * GPU that its verification server proves, announces and activates an instance whose key
 * exchange opens with that GPU's proof, and hears every step as events; then the faults:
 * a wrong plaintext, a forged proof, a miner that hangs up mid-verification, an instance
 * that cannot be reached, and one that does not hold the key it was given.
 */
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { withDatabase } from "../../infra/dev/database.ts";
import { freePort } from "../../infra/dev/net.ts";
import { DEV_VALIDATOR_SEED } from "../../infra/dev/services.ts";
import { hotkeyFromSeed as validatorFromSeed } from "../../src/chain/keys.ts";
import { instanceAudit, instances, nodes } from "../../src/db/schema.ts";
import { randomHotkey } from "../support/chutes-cli.ts";
import { type ProofFault, SimMiner, seedMinerAndChute } from "../support/sim-miner.ts";

const base = inject("platformUrl");
const databaseUrl = inject("platformDatabaseUrl");
const validatorHotkey = validatorFromSeed(DEV_VALIDATOR_SEED);
const miners: SimMiner[] = [];

afterAll(async () => {
  await Promise.all(miners.map((m) => m.close()));
});

async function newMiner(options: { proofFault?: ProofFault; gpus?: number } = {}) {
  const hotkey = randomHotkey();
  const miner = new SimMiner({ baseUrl: base, hotkey, validatorHotkey, ...options });
  miners.push(miner);
  const uid = -1000 - miners.length;
  const chute = await withDatabase(databaseUrl, (db) =>
    seedMinerAndChute(db, hotkey.ss58, { uid, gpus: options.gpus }),
  );
  await miner.startVerificationServer();
  await miner.connect();
  return { miner, ...chute };
}

/** A miner whose GPU is verified, for the instance cases. */
async function verifiedMiner() {
  const setup = await newMiner();
  const { task_id } = await setup.miner.registerNodes();
  expect(await setup.miner.awaitVerification(task_id)).toMatchObject({ status: "verified" });
  return setup;
}

describe("the miner plane against npm start", () => {
  let happy: Awaited<ReturnType<typeof newMiner>>;
  beforeAll(async () => {
    happy = await newMiner();
  });

  it("connect → verified GPU → active, verified instance, with every event over the socket", async () => {
    const { miner, chuteId } = happy;
    const gpu = miner.devices[0]?.uuid ?? "";

    const registered = await miner.registerNodes();
    expect(registered.task_id).toMatch(new RegExp(`^${miner.hotkey}::`));
    expect(registered.nodes).toMatchObject([{ uuid: gpu, status: "verifying", seed: expect.stringMatching(/^\d+$/) }]);
    // Registering the same GPU again is a conflict, and changes nothing.
    const again = await miner.call("POST", "/nodes/", { body: { nodes: miner.nodeArgs() } });
    expect(again.status, again.text).toBe(409);

    expect(await miner.awaitVerification(registered.task_id)).toEqual({ http: 200, status: "verified" });
    await miner.waitEvent("gpu_verified", { gpu_id: gpu, miner_hotkey: miner.hotkey });
    expect(miner.challenges).toBe(1);
    expect(await miner.list("nodes")).toMatchObject([{ uuid: gpu, status: "verified", verification_error: null }]);

    const instance = await miner.startInstance();
    const announced = await miner.announce(chuteId, instance.host, instance.port);
    expect(announced.status, announced.text).toBe(202);
    const instanceId = announced.json<{ instance_id: string }>().instance_id;
    expect(announced.text).not.toMatch(/session_key/);
    await miner.waitEvent("instance_created", { instance_id: instanceId, chute_id: chuteId });
    // The same GPU cannot back a second instance, nor can the host:port be reused.
    const other = await miner.startInstance();
    expect((await miner.announce(chuteId, other.host, other.port)).status).toBe(409);
    expect((await miner.announce(chuteId, instance.host, instance.port)).status).toBe(409);

    // PATCHed every 200 ms like an impatient activator: one verification, never a 429.
    const { res, patches } = await miner.activateUntilSettled(chuteId, instanceId, 90_000, 200);
    expect(res.status, res.text).toBe(200);
    expect(res.json()).toMatchObject({ instance_id: instanceId, active: true, verified: true });
    expect(patches).toBeGreaterThan(1);
    await miner.waitEvent("instance_verified", { instance_id: instanceId, miner_hotkey: miner.hotkey });
    expect(instance.keyed).toBe(true);
    expect(instance.instanceId).toBe(instanceId);

    const listed = await miner.list("instances");
    expect(listed).toMatchObject([{ instance_id: instanceId, active: true, verified: true, nodes: [gpu] }]);
    expect(JSON.stringify(listed)).not.toMatch(/session_key/);
    await withDatabase(databaseUrl, async (db) => {
      const [row] = await db.select().from(instances).where(eq(instances.instanceId, instanceId));
      expect(row?.sessionKey).toMatch(/\S{40,}/);
      const [audit] = await db.select().from(instanceAudit).where(eq(instanceAudit.instanceId, instanceId));
      expect(audit?.verifiedAt).toBeInstanceOf(Date);
    });
    const chutesList = (await miner.list("chutes")) as { chute_id: string; image: string }[];
    expect(chutesList.find((c) => c.chute_id === chuteId)?.image).toMatch(/^simdev\w+\/simimage\w+:0\.1$/);
    const metrics = (await miner.list("metrics")) as { chute_id: string; instance_count: number }[];
    expect(metrics.find((m) => m.chute_id === chuteId)?.instance_count).toBe(1);

    // The miner deletes it: gone, audited, announced; a second delete is a 404.
    const deleted = await miner.call("DELETE", `/instances/${chuteId}/${instanceId}`, { purpose: "instances" });
    expect(deleted.json()).toEqual({ instance_id: instanceId, deleted: true });
    await miner.waitEvent("instance_deleted", { instance_id: instanceId, reason: "miner initialized" });
    expect((await miner.call("DELETE", `/instances/${chuteId}/${instanceId}`, { purpose: "instances" })).status).toBe(
      404,
    );
    // And the GPU itself.
    const gone = await miner.call("DELETE", `/nodes/${gpu}`, { purpose: "nodes" });
    expect(gone.json()).toEqual({ node_id: gpu, deleted: true });
    await miner.waitEvent("node_deleted", { node_id: gpu });
    expect(await miner.list("nodes")).toEqual([]);
  });

  it.each([
    ["wrong_plaintext", /wrong plaintext/],
    ["forged_proof", /did not check out/],
    ["disconnect", /could not be reached or closed the connection/],
  ] as const)("a miner answering with %s ends failed, saying why", async (fault, reason) => {
    const { miner } = await newMiner({ proofFault: fault });
    const { task_id, nodes: registered } = await miner.registerNodes();
    const status = await miner.awaitVerification(task_id);
    expect(status).toMatchObject({ http: 200, status: "failed", detail: expect.stringMatching(reason) });
    const [node] = (await miner.list("nodes")) as { status: string; verification_error: string }[];
    expect(node).toMatchObject({ status: "failed", verification_error: expect.stringMatching(reason) });
    expect(miner.frames.some((f) => f.reason === "gpu_verified")).toBe(false);
    // A failed GPU cannot back an instance.
    const uuid = (registered[0] as { uuid: string }).uuid;
    const refused = await miner.announce(happy.chuteId, "127.0.0.1", await freePort(), [uuid]);
    expect(refused.status, refused.text).toBe(400);
    expect(refused.json<{ detail: string }>().detail).toMatch(/is not verified \(status failed\)/);
  });

  it("an instance that cannot be reached is removed after its verification, with the reason", async () => {
    const { miner, chuteId } = await verifiedMiner();
    const port = await freePort(); // nothing listens there
    const announced = await miner.announce(chuteId, "127.0.0.1", port);
    expect(announced.status, announced.text).toBe(202);
    const instanceId = announced.json<{ instance_id: string }>().instance_id;
    const { res } = await miner.activateUntilSettled(chuteId, instanceId);
    expect(res.status).toBe(404);
    const event = await miner.waitEvent("instance_deleted", { instance_id: instanceId });
    expect(event.data?.reason).toMatch(/key exchange failed: .*could not be reached/);
    await withDatabase(databaseUrl, async (db) => {
      const [audit] = await db.select().from(instanceAudit).where(eq(instanceAudit.instanceId, instanceId));
      expect(audit).toMatchObject({
        deletedAt: expect.any(Date),
        deletionReason: expect.stringMatching(/key exchange/),
      });
      expect(audit?.verifiedAt).toBeNull();
    });
    // Its GPU is free again.
    const instance = await miner.startInstance();
    expect((await miner.announce(chuteId, instance.host, instance.port)).status).toBe(202);
  });

  it("an instance that never answers its key exchange is removed once the exchange's time limit passes", async () => {
    const { miner, chuteId } = await verifiedMiner();
    const instance = await miner.startInstance({ unwrapKey: () => new Promise<Uint8Array>(() => {}) });
    const instanceId = (await miner.announce(chuteId, instance.host, instance.port)).json<{ instance_id: string }>()
      .instance_id;
    const started = Date.now();
    const { res } = await miner.activateUntilSettled(chuteId, instanceId, 100_000);
    expect(res.status).toBe(404);
    const event = await miner.waitEvent("instance_deleted", { instance_id: instanceId });
    // The tiny profile's window (30 s) plus the 10 s allowance: not forever, not too soon.
    expect(event.data?.reason).toMatch(/key exchange failed: .*did not answer within 40 s/);
    expect(Date.now() - started).toBeGreaterThan(39_000);
  }, 120_000);

  it("an instance that does not hold the key it was given fails the liveness ping and is removed", async () => {
    const { miner, chuteId } = await verifiedMiner();
    const instance = await miner.startInstance({
      unwrapKey: async () => crypto.getRandomValues(new Uint8Array(32)),
    });
    const instanceId = (await miner.announce(chuteId, instance.host, instance.port)).json<{ instance_id: string }>()
      .instance_id;
    const { res } = await miner.activateUntilSettled(chuteId, instanceId);
    expect(res.status).toBe(404);
    const event = await miner.waitEvent("instance_deleted", { instance_id: instanceId });
    expect(event.data?.reason).toMatch(/liveness ping .* mac is wrong/);
    await withDatabase(databaseUrl, async (db) => {
      expect(await db.select().from(nodes).where(eq(nodes.minerHotkey, miner.hotkey))).toHaveLength(1);
    });
  });
});
