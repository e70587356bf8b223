/**
 * @module Rows the miner plane's tests stand on, written straight into Postgres (any lane:
 * no Node or workerd APIs): a miner's metagraph entry, a built image with a chute, GPU
 * nodes in a given state, and instances. The state they describe is what the platform
 * itself would write; tests use them to reach a route or a service without replaying
 * every earlier step.
 */
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
import type { AnyDatabase } from "../../src/db/types.ts";
import type { DeviceRecord } from "../../src/schemas/gpu-proof.ts";
import { resolveNodeSelector } from "../../src/services/gpus.ts";
import { generateSessionKey, sealSessionKey } from "../../src/services/instance-keys.ts";

/** The miner's hotkey as a manual metagraph entry (negative uid: the every-minute sync keeps it). */
export async function seedMiner(db: AnyDatabase, minerHotkey: string, uid = -100): Promise<void> {
  await db
    .insert(metagraphNodes)
    .values({ hotkey: minerHotkey, netuid: 64, nodeId: uid, coldkey: minerHotkey, checksum: "sim" })
    .onConflictDoNothing();
}

/**
 * Seeds what a miner needs from the rest of the platform, straight into its database: the
 * hotkey (`seedMiner`) and a built image with a chute that runs on `gpus` H100-class GPUs.
 */
export async function seedMinerAndChute(
  db: AnyDatabase,
  minerHotkey: string,
  options: { gpus?: number; uid?: number } = {},
): Promise<{ chuteId: string; version: string }> {
  const suffix = crypto.randomUUID().slice(0, 8);
  await seedMiner(db, minerHotkey, options.uid);
  const userId = crypto.randomUUID();
  await db.insert(users).values({
    userId,
    username: `simdev${suffix}`,
    coldkey: minerHotkey,
    fingerprintHash: `sim-${suffix}`,
    paymentAddress: `sim-pay-${suffix}`,
    developerPaymentAddress: `sim-dev-${suffix}`,
  });
  const imageId = crypto.randomUUID();
  await db.insert(images).values({ imageId, userId, name: `simimage${suffix}`, tag: "0.1", status: "built" });
  const resolved = resolveNodeSelector({
    gpu_count: options.gpus ?? 1,
    min_vram_gb_per_gpu: 80,
    include: ["h100_sxm", "h200"],
  });
  if (!resolved.ok) throw new Error(resolved.message);
  const chuteId = crypto.randomUUID();
  const version = crypto.randomUUID();
  await db.insert(chutes).values({
    chuteId,
    userId,
    name: `simchute${suffix}`,
    slug: `simdev${suffix}-simchute${suffix}`,
    imageId,
    cords: [],
    nodeSelector: resolved.selector,
    version,
    chutesVersion: "0.2.14",
  });
  return { chuteId, version };
}

const hex32 = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");

/** An H100 SXM as a bootstrap pod reports it, with a fresh UUID. */
export function h100Device(): DeviceRecord {
  return {
    name: "NVIDIA H100 80GB HBM3",
    uuid: hex32(),
    memory: 85_520_809_984,
    major: 9,
    minor: 0,
    processors: 132,
    sxm: true,
    clock_rate: 1_980_000,
    max_threads_per_processor: 2048,
    concurrent_kernels: true,
    ecc: true,
  };
}

/** GPU rows for `minerHotkey` (H100 SXM), `verified` by default. */
export async function seedNodes(
  db: AnyDatabase,
  minerHotkey: string,
  options: { count?: number; status?: "verifying" | "verified" | "failed"; taskId?: string } = {},
): Promise<string[]> {
  const status = options.status ?? "verified";
  const uuids = Array.from({ length: options.count ?? 1 }, hex32);
  await db.insert(nodes).values(
    uuids.map((uuid, index) => ({
      uuid,
      minerHotkey,
      gpuIdentifier: "h100_sxm",
      name: "NVIDIA H100 80GB HBM3",
      memory: 85_520_809_984,
      major: 9,
      minor: 0,
      processors: 132,
      sxm: true,
      clockRate: 1_980_000,
      maxThreadsPerProcessor: 2048,
      concurrentKernels: true,
      ecc: true,
      deviceIndex: index,
      seed: "42",
      verificationHost: "127.0.0.1",
      verificationPort: 9,
      status,
      verificationTask: options.taskId ?? `${minerHotkey}::${crypto.randomUUID()}`,
      verificationStartedAt: new Date(),
      verifiedAt: status === "verified" ? new Date() : null,
    })),
  );
  return uuids;
}

/** An instance of `chuteId` on `nodeIds` (active and verified unless told otherwise), with its audit row. */
export async function seedInstance(
  db: AnyDatabase,
  input: {
    chuteId: string;
    version: string;
    minerHotkey: string;
    nodeIds: string[];
    port?: number;
    verified?: boolean;
    /** With it, a verified instance holds a sealed session key, as after its key exchange (routable). */
    walletKey?: string;
  },
): Promise<string> {
  const instanceId = crypto.randomUUID();
  const verified = input.verified ?? true;
  const sessionKey =
    verified && input.walletKey ? await sealSessionKey(generateSessionKey(), input.walletKey, instanceId) : null;
  await db.insert(instances).values({
    instanceId,
    chuteId: input.chuteId,
    version: input.version,
    minerHotkey: input.minerHotkey,
    minerUid: 1,
    minerColdkey: input.minerHotkey,
    host: "127.0.0.1",
    port: input.port ?? 20_000 + Math.floor(Math.random() * 40_000),
    active: verified,
    verified,
    sessionKey,
  });
  await db.insert(instanceNodes).values(input.nodeIds.map((nodeId) => ({ instanceId, nodeId })));
  await db.insert(instanceAudit).values({
    instanceId,
    chuteId: input.chuteId,
    version: input.version,
    minerUid: 1,
    minerHotkey: input.minerHotkey,
  });
  return instanceId;
}
