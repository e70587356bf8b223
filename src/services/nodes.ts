/**
 * @module GPU nodes (upstream `POST /nodes/` and friends, upstream-miner-protocol.md §3):
 * validating what a miner reports against the supported-GPU table, registering a server's
 * GPUs as one verification task, reporting that task's status, listing and deleting.
 *
 * Node states: `verifying` (registered, the Verifier Durable Object is running the GPU
 * proof) → `verified`, or `failed` with `verification_error` saying what failed and why.
 * A failed node stays listed so the miner can read why; to retry, the miner deletes it
 * and registers again. Registration is all-or-nothing: one bad GPU refuses the request.
 */
import { and, count, eq, inArray, isNotNull, lt, sql } from "drizzle-orm";
import { instanceNodes, nodes } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";
import type { Config } from "../env.ts";
import { randomSeed } from "../gpu-proof/protocol.ts";
import { ApiError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { checkMinerHost } from "../lib/miner-hosts.ts";
import type { DeviceRecord } from "../schemas/gpu-proof.ts";
import type { NodeArgs } from "../schemas/miner-plane.ts";
import { GPUS, gpuByKey, identifyGpu } from "./gpus.ts";
import { removeInstance } from "./instances.ts";
import { publishMinerEvent } from "./miner-events.ts";
import { startVerification } from "./verification.ts";

export type NodeRow = typeof nodes.$inferSelect;

export interface MinerPlaneDeps {
  db: AnyDatabase;
  config: Config;
  log: Logger;
  now(): Date;
}

/** A verification running longer than this is failed by the sweep (the Verifier's own waits are shorter). */
export const VERIFICATION_LIMIT_MS = 30 * 60_000;

/**
 * Upstream's GPU parameter checks: the name identifies a supported model equal to
 * `gpu_identifier`; memory, compute capability, SM count, clock and threads match its spec.
 * Returns what is wrong, or null.
 */
export function nodeSpecProblem(node: NodeArgs): string | null {
  const spec = identifyGpu(node.name);
  if (!spec) return `"${node.name}" is not a supported GPU (see GET /nodes/supported)`;
  if (node.gpu_identifier !== spec.key) {
    return `gpu_identifier ${node.gpu_identifier} does not match the device name "${node.name}" (${spec.key})`;
  }
  const gb = Math.floor(node.memory / 1e9);
  const maxGb = spec.memoryGb * 1.024 ** 3 + 1;
  if (gb < spec.memoryGb - 1 || gb > maxGb) {
    return `memory ${gb} GB is outside ${spec.memoryGb - 1}–${Math.floor(maxGb)} GB for ${spec.key}`;
  }
  if (node.major !== spec.major || node.minor !== spec.minor) {
    return `compute capability ${node.major}.${node.minor} is not ${spec.major}.${spec.minor} for ${spec.key}`;
  }
  if (node.processors !== spec.processors) {
    return `processors ${node.processors} is not ${spec.processors} for ${spec.key}`;
  }
  const mhz = node.clock_rate / 1000;
  if (mhz < spec.baseClockMhz || mhz > spec.boostClockMhz * 1.1) {
    return `clock_rate ${mhz} MHz is outside ${spec.baseClockMhz}–${spec.boostClockMhz * 1.1} MHz for ${spec.key}`;
  }
  if (node.max_threads_per_processor !== spec.maxThreadsPerProcessor) {
    return `max_threads_per_processor ${node.max_threads_per_processor} is not ${spec.maxThreadsPerProcessor} for ${spec.key}`;
  }
  if (!node.concurrent_kernels) return `concurrent_kernels must be true for ${spec.key}`;
  return null;
}

/** The device record the GPU proof binds to (docs/gpu-proof.md §2). */
export function deviceOf(node: NodeRow): DeviceRecord {
  return {
    name: node.name,
    uuid: node.uuid,
    memory: node.memory,
    major: node.major,
    minor: node.minor,
    processors: node.processors,
    sxm: node.sxm,
    clock_rate: Math.round(node.clockRate),
    max_threads_per_processor: node.maxThreadsPerProcessor,
    concurrent_kernels: node.concurrentKernels,
    ecc: node.ecc,
  };
}

/** A node as the API shows it (upstream's field names; `seed` is a decimal string, a u64). */
export function nodeView(node: NodeRow) {
  return {
    uuid: node.uuid,
    miner_hotkey: node.minerHotkey,
    gpu_identifier: node.gpuIdentifier,
    name: node.name,
    memory: node.memory,
    major: node.major,
    minor: node.minor,
    processors: node.processors,
    sxm: node.sxm,
    clock_rate: node.clockRate,
    max_threads_per_processor: node.maxThreadsPerProcessor,
    concurrent_kernels: node.concurrentKernels,
    ecc: node.ecc,
    device_index: node.deviceIndex,
    seed: node.seed,
    verification_host: node.verificationHost,
    verification_port: node.verificationPort,
    status: node.status,
    verification_error: node.verificationError,
    verified_at: node.verifiedAt?.toISOString() ?? null,
    created_at: node.createdAt.toISOString(),
  };
}

/**
 * Registers one server's GPUs and starts their verification (202 upstream). Refuses the
 * whole request on any bad GPU (400), a host that is not public (400), or a GPU already
 * registered by anyone (409).
 */
export async function registerNodes(
  deps: MinerPlaneDeps,
  hotkey: string,
  args: NodeArgs[],
): Promise<{ nodes: ReturnType<typeof nodeView>[]; task_id: string }> {
  const uuids = args.map((node) => node.uuid);
  const repeated = uuids.find((uuid, i) => uuids.indexOf(uuid) !== i);
  if (repeated) throw new ApiError("bad_request", `GPU ${repeated} appears twice in this request.`);
  for (const [i, node] of args.entries()) {
    const problem = nodeSpecProblem(node);
    if (problem) throw new ApiError("bad_request", `GPU parameter validation error: nodes[${i}]: ${problem}.`);
  }
  for (const host of new Set(args.map((node) => node.verification_host))) {
    const verdict = await checkMinerHost(host, {
      allowLoopback: deps.config.ALLOW_LOOPBACK_MINERS,
      dohUrl: deps.config.DOH_URL,
    });
    if (!verdict.ok) throw new ApiError("bad_request", `Invalid verification_host: ${verdict.reason}.`);
  }
  const taskId = `${hotkey}::${crypto.randomUUID()}`;
  const seed = randomSeed().toString();
  const now = deps.now();
  const rows = await deps.db.transaction(async (tx) => {
    const inserted = await tx
      .insert(nodes)
      .values(
        args.map((node) => ({
          uuid: node.uuid,
          minerHotkey: hotkey,
          gpuIdentifier: node.gpu_identifier,
          name: node.name,
          memory: node.memory,
          major: node.major,
          minor: node.minor,
          processors: node.processors,
          sxm: node.sxm,
          clockRate: node.clock_rate,
          maxThreadsPerProcessor: node.max_threads_per_processor,
          concurrentKernels: node.concurrent_kernels,
          ecc: node.ecc,
          deviceIndex: node.device_index,
          seed,
          verificationHost: node.verification_host,
          verificationPort: node.verification_port,
          status: "verifying" as const,
          verificationTask: taskId,
          verificationStartedAt: now,
          createdAt: now,
        })),
      )
      .onConflictDoNothing()
      .returning();
    if (inserted.length !== args.length) {
      const fresh = new Set(inserted.map((row) => row.uuid));
      // Rolls back the GPUs that were new: nothing half-registered.
      throw new ApiError(
        "conflict",
        `Nodes already exist in inventory: ${uuids.filter((uuid) => !fresh.has(uuid)).join(", ")}. Delete them first to register again.`,
      );
    }
    return inserted;
  });
  try {
    await startVerification(deps.config, { kind: "nodes", id: taskId });
  } catch (error) {
    await failNodes(deps, taskId, "the validator could not start verification; delete the nodes and try again");
    throw new ApiError("dependency_unavailable", "Could not start GPU verification; try again shortly.", {
      cause: error,
    });
  }
  return { nodes: rows.map(nodeView), task_id: taskId };
}

/** Marks the task's nodes that are still verifying as failed with `reason`. */
export async function failNodes(deps: Pick<MinerPlaneDeps, "db">, taskId: string, reason: string): Promise<void> {
  await deps.db
    .update(nodes)
    .set({ status: "failed", verificationError: reason })
    .where(and(eq(nodes.verificationTask, taskId), eq(nodes.status, "verifying")));
}

export type VerificationStatus = { status: "pending" } | { status: "verified" } | { status: "failed"; detail: string };

/** Upstream's `GET /nodes/verification_status`: pending, verified, or failed with the reason. */
export async function verificationStatus(db: AnyDatabase, hotkey: string, taskId: string): Promise<VerificationStatus> {
  const owner = taskId.split("::")[0];
  const rows =
    owner === hotkey
      ? await db
          .select({ uuid: nodes.uuid, status: nodes.status, error: nodes.verificationError })
          .from(nodes)
          .where(and(eq(nodes.verificationTask, taskId), eq(nodes.minerHotkey, hotkey)))
      : [];
  if (rows.length === 0) throw new ApiError("not_found", `No verification task ${taskId} for this hotkey.`);
  const failed = rows.find((row) => row.status === "failed");
  if (failed) return { status: "failed", detail: `GPU ${failed.uuid}: ${failed.error ?? "verification failed"}` };
  if (rows.every((row) => row.status === "verified")) return { status: "verified" };
  return { status: "pending" };
}

export async function minerNodes(db: AnyDatabase, hotkey: string): Promise<NodeRow[]> {
  return db.select().from(nodes).where(eq(nodes.minerHotkey, hotkey)).orderBy(nodes.createdAt, nodes.uuid);
}

/** Public inventory (upstream `GET /nodes/` compact form): verified GPUs per model, provisioned or idle. */
export async function nodeInventory(db: AnyDatabase): Promise<Record<string, { provisioned: number; idle: number }>> {
  const rows = await db
    .select({
      gpu: nodes.gpuIdentifier,
      provisioned: sql<number>`count(${instanceNodes.nodeId})::int`,
      total: count(),
    })
    .from(nodes)
    .leftJoin(instanceNodes, eq(instanceNodes.nodeId, nodes.uuid))
    .where(isNotNull(nodes.verifiedAt))
    .groupBy(nodes.gpuIdentifier);
  const out: Record<string, { provisioned: number; idle: number }> = {};
  for (const row of rows) out[row.gpu] = { provisioned: row.provisioned, idle: row.total - row.provisioned };
  return out;
}

/** Upstream `GET /nodes/supported`: the table with the fields the miner CLI reads. */
export function supportedGpus() {
  return Object.fromEntries(
    GPUS.map((spec) => [
      spec.key,
      {
        model_name_check: spec.namePattern.source,
        memory: spec.memoryGb,
        major: spec.major,
        minor: spec.minor,
        processors: spec.processors,
        clock_rate: { base: spec.baseClockMhz, boost: spec.boostClockMhz },
        max_threads_per_processor: spec.maxThreadsPerProcessor,
        concurrent_kernels: true,
        ecc: spec.ecc,
        sxm: spec.sxm,
        hourly_rate: gpuByKey(spec.key)?.hourlyUsd ?? 0,
      },
    ]),
  );
}

/**
 * Deletes one of the miner's GPUs (404 if it is not theirs). An instance running on it
 * cannot run without it, so that instance is removed first (audited, announced).
 */
export async function deleteNode(deps: MinerPlaneDeps, hotkey: string, uuid: string): Promise<void> {
  const [node] = await deps.db
    .select({ uuid: nodes.uuid })
    .from(nodes)
    .where(and(eq(nodes.uuid, uuid), eq(nodes.minerHotkey, hotkey)));
  if (!node) throw new ApiError("not_found", `No node ${uuid} belongs to this hotkey.`);
  const using = await deps.db
    .select({ instanceId: instanceNodes.instanceId })
    .from(instanceNodes)
    .where(eq(instanceNodes.nodeId, uuid));
  for (const { instanceId } of using) await removeInstance(deps, instanceId, `node ${uuid} was deleted by its miner`);
  await deps.db.delete(nodes).where(and(eq(nodes.uuid, uuid), eq(nodes.minerHotkey, hotkey)));
  await publishMinerEvent(deps, { reason: "node_deleted", data: { node_id: uuid, miner_hotkey: hotkey } });
}

/** Fails verifications that ran past `VERIFICATION_LIMIT_MS` (a Verifier that died): nothing stays `verifying`. */
export async function sweepStuckNodes(deps: Pick<MinerPlaneDeps, "db" | "now">): Promise<number> {
  const cutoff = new Date(deps.now().getTime() - VERIFICATION_LIMIT_MS);
  const rows = await deps.db
    .update(nodes)
    .set({ status: "failed", verificationError: "verification did not finish in time; delete the node and retry" })
    .where(and(eq(nodes.status, "verifying"), lt(nodes.verificationStartedAt, cutoff)))
    .returning({ uuid: nodes.uuid });
  return rows.length;
}

/** The nodes of `uuids` owned by `hotkey` (for instance announce). */
export async function ownedNodes(db: AnyDatabase, hotkey: string, uuids: string[]): Promise<NodeRow[]> {
  if (uuids.length === 0) return [];
  return db
    .select()
    .from(nodes)
    .where(and(inArray(nodes.uuid, uuids), eq(nodes.minerHotkey, hotkey)));
}
