/**
 * The metagraph sync (src/services/metagraph.ts) against real Postgres, reading the dev
 * chain through the `file` chain. Each test uses its own netuid, so tests (and other
 * files sharing the database) never see each other's rows.
 */
import { env } from "cloudflare:workers";
import { eq, inArray, sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { FileChain } from "../../src/chain/file.ts";
import { openDatabase } from "../../src/db/client.ts";
import {
  chutes,
  images,
  instanceAudit,
  instanceNodes,
  instances,
  metagraphNodes,
  nodes,
  users,
} from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import {
  DEREGISTERED_REASON,
  getMinerByHotkey,
  isRegisteredMiner,
  syncMetagraph,
} from "../../src/services/metagraph.ts";
import { deregisterDevNeuron, randomHotkey, registerDevNeuron } from "./chain-helpers.ts";

const config = configFor(env);
const handle = openDatabase(config);
const db = handle.db;
const chain = new FileChain({ url: config.CHAIN_FILE_URL ?? "" });
let nextNetuid = 20_000 + Math.floor(Math.random() * 10_000);

afterAll(() => handle.close());

const sync = (netuid: number, overrides: Partial<Parameters<typeof syncMetagraph>[0]> = {}) =>
  syncMetagraph({ db, chain, now: () => new Date(), ...overrides }, netuid);

/** Rows of a netuid with `xmin`, which changes whenever Postgres rewrites a row. */
async function rows(netuid: number) {
  const result = await db.execute<{ hotkey: string; node_id: number; xmin: string; stake: number; incentive: number }>(
    sql`select hotkey, node_id, xmin::text as xmin, stake, incentive from metagraph_nodes where netuid = ${netuid} order by node_id`,
  );
  return result.rows;
}

async function subnetWithMiners(count: number) {
  const netuid = nextNetuid++;
  const coldkey = randomHotkey();
  const hotkeys = Array.from({ length: count }, randomHotkey);
  for (const [uid, hotkey] of hotkeys.entries()) {
    await registerDevNeuron(netuid, {
      hotkey,
      coldkey,
      uid,
      stake: uid * 1.5,
      incentive: uid / 10,
      axon: uid === 1 ? { ip: "10.0.0.7", port: 8091 } : null,
    });
  }
  return { netuid, coldkey, hotkeys };
}

/** A user, image and chute, so a miner can have an instance. */
async function chuteFor(tag: string) {
  const id = crypto.randomUUID();
  await db.insert(users).values({
    userId: id,
    username: `u_${tag}_${id.slice(0, 8)}`,
    coldkey: `cold-${id}`,
    fingerprintHash: `fp-${id}`,
    paymentAddress: `pay-${id}`,
    developerPaymentAddress: `dev-${id}`,
  });
  await db.insert(images).values({ imageId: id, userId: id, name: `img-${id}`, tag: "1" });
  await db.insert(chutes).values({
    chuteId: id,
    userId: id,
    name: `chute-${id}`,
    slug: `s-${id}`,
    imageId: id,
    cords: [],
    nodeSelector: {
      gpu_count: 1,
      min_vram_gb_per_gpu: 16,
      include: null,
      exclude: null,
      supported_gpus: ["h100"],
      compute_multiplier: 0.52,
    },
    version: "v1",
  });
  return id;
}

async function gpuAndInstance(miner: string, uid: number, coldkey: string, chuteId: string) {
  const uuid = `GPU-${crypto.randomUUID()}`;
  const instanceId = crypto.randomUUID();
  await db.insert(nodes).values({
    uuid,
    minerHotkey: miner,
    gpuIdentifier: "h100_sxm",
    name: "NVIDIA H100 80GB HBM3",
    memory: 85_000_000_000,
    major: 9,
    minor: 0,
    processors: 132,
    sxm: true,
    clockRate: 1_980_000,
    maxThreadsPerProcessor: 2048,
    concurrentKernels: true,
    ecc: true,
    seed: "18446744073709551615",
    verificationHost: "10.0.0.7",
    verificationPort: 8000,
  });
  await db.insert(instances).values({
    instanceId,
    chuteId,
    version: "v1",
    minerHotkey: miner,
    minerUid: uid,
    minerColdkey: coldkey,
    host: "10.0.0.7",
    port: 30_000 + Math.floor(Math.random() * 20_000),
  });
  await db.insert(instanceNodes).values({ instanceId, nodeId: uuid });
  await db.insert(instanceAudit).values({ instanceId, chuteId, version: "v1", minerUid: uid, minerHotkey: miner });
  return { uuid, instanceId };
}

describe("metagraph sync", () => {
  it("inserts every neuron of the subnet with its synced fields", async () => {
    const { netuid, coldkey, hotkeys } = await subnetWithMiners(3);
    const result = await sync(netuid);
    expect(result).toMatchObject({ netuid, neurons: 3, inserted: 3, updated: 0, unchanged: 0, removed: [] });
    const row = await getMinerByHotkey(db, hotkeys[1] ?? "");
    expect(row).toMatchObject({
      hotkey: hotkeys[1],
      netuid,
      nodeId: 1,
      coldkey,
      stake: 1.5,
      incentive: 0.1,
      ip: "10.0.0.7",
      port: 8091,
      ipType: 4,
      protocol: 4,
      lastUpdated: 0,
    });
    expect(row?.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(await getMinerByHotkey(db, hotkeys[0] ?? "")).toMatchObject({ ip: null, port: null, stake: 0 });
    expect(await isRegisteredMiner(db, hotkeys[2] ?? "", netuid)).toBe(true);
    expect(await isRegisteredMiner(db, hotkeys[2] ?? "", netuid + 1)).toBe(false);
    expect(await isRegisteredMiner(db, randomHotkey(), netuid)).toBe(false);
  });

  it("leaves unchanged rows untouched and rewrites only the rows that changed", async () => {
    const { netuid, coldkey, hotkeys } = await subnetWithMiners(3);
    await sync(netuid);
    const before = await rows(netuid);
    expect(await sync(netuid)).toMatchObject({ inserted: 0, updated: 0, unchanged: 3, removed: [] });
    expect(await rows(netuid)).toEqual(before);

    await registerDevNeuron(netuid, { hotkey: hotkeys[2] ?? "", coldkey, uid: 2, stake: 3, incentive: 0.75 });
    expect(await sync(netuid)).toMatchObject({ inserted: 0, updated: 1, unchanged: 2 });
    const after = await rows(netuid);
    expect(after.slice(0, 2)).toEqual(before.slice(0, 2));
    expect(after[2]).toMatchObject({ hotkey: hotkeys[2], incentive: 0.75 });
    expect(after[2]?.xmin).not.toBe(before[2]?.xmin);
  });

  it("removes a deregistered hotkey with its GPUs and instances, closes their audit rows, keeps manual entries", async () => {
    const { netuid, coldkey, hotkeys } = await subnetWithMiners(2);
    await sync(netuid);
    const [stays = "", leaves = ""] = hotkeys;
    const manual = randomHotkey();
    await db.insert(metagraphNodes).values({ hotkey: manual, netuid, nodeId: -1, coldkey, checksum: "manual" });
    const chuteId = await chuteFor("dereg");
    const gone = await gpuAndInstance(leaves, 1, coldkey, chuteId);
    const kept = await gpuAndInstance(stays, 0, coldkey, chuteId);

    await deregisterDevNeuron(netuid, leaves);
    const result = await sync(netuid);
    expect(result).toMatchObject({ removed: [leaves], closedInstances: 1, unchanged: 1 });

    expect(await getMinerByHotkey(db, leaves)).toBeNull();
    expect(await db.select().from(nodes).where(eq(nodes.uuid, gone.uuid))).toEqual([]);
    expect(await db.select().from(instances).where(eq(instances.instanceId, gone.instanceId))).toEqual([]);
    expect(await db.select().from(instanceNodes).where(eq(instanceNodes.instanceId, gone.instanceId))).toEqual([]);
    const [audit] = await db.select().from(instanceAudit).where(eq(instanceAudit.instanceId, gone.instanceId));
    expect(audit?.deletionReason).toBe(DEREGISTERED_REASON);
    expect(audit?.deletedAt).toBeInstanceOf(Date);

    // The miner that stayed keeps everything; the manual entry survives the sync.
    expect(await db.select().from(instances).where(eq(instances.instanceId, kept.instanceId))).toHaveLength(1);
    const [keptAudit] = await db.select().from(instanceAudit).where(eq(instanceAudit.instanceId, kept.instanceId));
    expect(keptAudit?.deletedAt).toBeNull();
    expect(await getMinerByHotkey(db, manual)).toMatchObject({ nodeId: -1, checksum: "manual" });
  });

  it("changes nothing when the chain cannot be read, answers nothing, or the sync is aborted", async () => {
    const { netuid, hotkeys } = await subnetWithMiners(2);
    await sync(netuid);
    const before = await rows(netuid);
    await deregisterDevNeuron(netuid, hotkeys[0] ?? "");

    const down = new FileChain({ url: "http://127.0.0.1:9" });
    await expect(sync(netuid, { chain: down })).rejects.toThrow();
    await expect(
      sync(netuid + 50_000 > 65_535 ? 1 : netuid, { chain: { getNeurons: async () => [] } }),
    ).rejects.toThrow(/no neurons/);
    const abort = new AbortController();
    abort.abort(new Error("time limit"));
    await expect(sync(netuid, { signal: abort.signal })).rejects.toThrow(/time limit/);
    expect(await rows(netuid)).toEqual(before);
    const all = await db.select().from(metagraphNodes).where(inArray(metagraphNodes.hotkey, hotkeys));
    expect(all).toHaveLength(2);
  });
});
