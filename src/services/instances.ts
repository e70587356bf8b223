/**
 * @module Chute instances (upstream-miner-protocol.md §4, docs/protocols.md "Instance
 * protocol"): announce, activate (which starts the one verification an instance gets),
 * delete, the miner's list; removal with an audit trail; consecutive-failure counting
 * (`recordInstanceFailure` / `recordInstanceSuccess`, called by the gateway and the health
 * probes); and the liveness ping.
 *
 * An instance is routable when `active AND verified`. Every change to that set is pushed
 * to the chute's router (`refreshChuteRouter`) after it is committed.
 */
import { and, eq, gt, inArray, isNull, lt, sql } from "drizzle-orm";
import { uniqueViolation } from "../db/errors.ts";
import { chutes, instanceAudit, instanceNodes, instances, metagraphNodes } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";
import { ApiError } from "../lib/errors.ts";
import { pingMac, pingNonce } from "../lib/instance-envelope.ts";
import { errorFields } from "../lib/log.ts";
import { checkMinerHost } from "../lib/miner-hosts.ts";
import { pingReplySchema } from "../schemas/miner-plane.ts";
import { openSessionKey } from "./instance-keys.ts";
import { refreshChuteRouter } from "./instance-routing.ts";
import type { InstanceOutcome } from "./metering.ts";
import { callMiner, replyJson } from "./miner-client.ts";
import { publishMinerEvent } from "./miner-events.ts";
import type { MinerPlaneDeps } from "./nodes.ts";
import { ownedNodes } from "./nodes.ts";
import { startVerification } from "./verification.ts";

export type InstanceRow = typeof instances.$inferSelect;

/** An instance as the API shows it: never the session key. */
export function instanceView(row: InstanceRow, nodeIds: string[] = []) {
  return {
    instance_id: row.instanceId,
    chute_id: row.chuteId,
    version: row.version,
    miner_hotkey: row.minerHotkey,
    miner_uid: row.minerUid,
    miner_coldkey: row.minerColdkey,
    host: row.host,
    port: row.port,
    region: row.region,
    active: row.active,
    verified: row.verified,
    chutes_version: row.chutesVersion,
    verification_error: row.verificationError,
    consecutive_failures: row.consecutiveFailures,
    last_verified_at: row.lastVerifiedAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
    nodes: nodeIds,
  };
}

/** `http://host:port`, with IPv6 literals bracketed. */
export function instanceBase(row: Pick<InstanceRow, "host" | "port">): string {
  const host = row.host.includes(":") ? `[${row.host}]` : row.host;
  return `http://${host}:${row.port}`;
}

/**
 * Upstream `POST /instances/{chute_id}/` with its checks in order, each a clear 4xx: the
 * chute exists (404), the host is public (400), the GPU count matches the selector (400),
 * every node is the miner's (404), verified and of a model the selector admits (400), and
 * no node or host:port is taken (409). The row and its node links are one transaction.
 */
export async function announceInstance(
  deps: MinerPlaneDeps,
  hotkey: string,
  chuteId: string,
  input: { node_ids: string[]; host: string; port: number },
): Promise<ReturnType<typeof instanceView>> {
  const [chute] = await deps.db
    .select({
      chuteId: chutes.chuteId,
      version: chutes.version,
      chutesVersion: chutes.chutesVersion,
      selector: chutes.nodeSelector,
    })
    .from(chutes)
    .where(eq(chutes.chuteId, chuteId));
  if (!chute) throw new ApiError("not_found", `No chute ${chuteId}.`);
  const [miner] = await deps.db.select().from(metagraphNodes).where(eq(metagraphNodes.hotkey, hotkey));
  if (!miner) throw new ApiError("unauthorized", `Hotkey ${hotkey} is not registered.`);
  const verdict = await checkMinerHost(input.host, {
    allowLoopback: deps.config.ALLOW_LOOPBACK_MINERS,
    dohUrl: deps.config.DOH_URL,
  });
  if (!verdict.ok) throw new ApiError("bad_request", `Invalid host: ${verdict.reason}.`);
  const nodeIds = [...new Set(input.node_ids)];
  if (nodeIds.length !== input.node_ids.length) throw new ApiError("bad_request", "node_ids lists a GPU twice.");
  const gpuCount = chute.selector.gpu_count ?? 1;
  if (nodeIds.length !== gpuCount) {
    throw new ApiError("bad_request", `This chute needs ${gpuCount} GPU(s) per instance; got ${nodeIds.length}.`);
  }
  const owned = await ownedNodes(deps.db, hotkey, nodeIds);
  const missing = nodeIds.filter((id) => !owned.some((node) => node.uuid === id));
  if (missing.length > 0) throw new ApiError("not_found", `No node ${missing.join(", ")} belongs to this hotkey.`);
  for (const node of owned) {
    if (node.status !== "verified" || !node.verifiedAt) {
      throw new ApiError("bad_request", `Node ${node.uuid} is not verified (status ${node.status}).`);
    }
    if (!chute.selector.supported_gpus.includes(node.gpuIdentifier)) {
      throw new ApiError(
        "bad_request",
        `Node ${node.uuid} (${node.gpuIdentifier}) is not suitable: this chute runs on ${chute.selector.supported_gpus.join(", ")}.`,
      );
    }
  }
  const instanceId = crypto.randomUUID();
  const now = deps.now();
  let row: InstanceRow;
  try {
    row = await deps.db.transaction(async (tx) => {
      const [created] = await tx
        .insert(instances)
        .values({
          instanceId,
          chuteId,
          version: chute.version,
          minerHotkey: hotkey,
          minerUid: miner.nodeId,
          minerColdkey: miner.coldkey,
          host: input.host,
          port: input.port,
          chutesVersion: chute.chutesVersion,
          createdAt: now,
          updatedAt: now,
        })
        .returning();
      if (!created) throw new Error("insert returned nothing");
      await tx.insert(instanceNodes).values(nodeIds.map((nodeId) => ({ instanceId, nodeId })));
      await tx.insert(instanceAudit).values({
        instanceId,
        chuteId,
        version: chute.version,
        minerUid: miner.nodeId,
        minerHotkey: hotkey,
        region: created.region,
        createdAt: now,
      });
      return created;
    });
  } catch (error) {
    const constraint = uniqueViolation(error);
    if (constraint === "instances_host_port_key") {
      throw new ApiError("conflict", `Another instance already serves ${input.host}:${input.port}.`);
    }
    if (constraint !== null) {
      throw new ApiError("conflict", `Node(s) ${nodeIds.join(", ")}: one is already provisioned in another instance.`);
    }
    throw error;
  }
  await publishMinerEvent(deps, {
    reason: "instance_created",
    data: { instance_id: instanceId, chute_id: chuteId, miner_hotkey: hotkey },
    recipients: [hotkey],
  });
  return instanceView(row, nodeIds);
}

async function ownedInstance(
  db: AnyDatabase,
  hotkey: string,
  chuteId: string,
  instanceId: string,
): Promise<InstanceRow> {
  const [row] = await db
    .select()
    .from(instances)
    .where(
      and(eq(instances.instanceId, instanceId), eq(instances.chuteId, chuteId), eq(instances.minerHotkey, hotkey)),
    );
  if (!row) throw new ApiError("not_found", `No instance ${instanceId} of chute ${chuteId} belongs to this hotkey.`);
  return row;
}

async function nodeIdsOf(db: AnyDatabase, instanceIds: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (instanceIds.length === 0) return out;
  const rows = await db.select().from(instanceNodes).where(inArray(instanceNodes.instanceId, instanceIds));
  for (const row of rows) out.set(row.instanceId, [...(out.get(row.instanceId) ?? []), row.nodeId]);
  return out;
}

/**
 * Upstream `PATCH /instances/{chute_id}/{instance_id}` `{"active": true}`: marks it active
 * and starts its verification, once. Later PATCHes only report where it stands (the
 * Verifier is named by the instance, so a repeat cannot start a second one: no 7-try cap).
 */
export async function activateInstance(
  deps: MinerPlaneDeps,
  hotkey: string,
  chuteId: string,
  instanceId: string,
): Promise<ReturnType<typeof instanceView>> {
  let row = await ownedInstance(deps.db, hotkey, chuteId, instanceId);
  if (!row.active) {
    const [updated] = await deps.db
      .update(instances)
      .set({ active: true, updatedAt: deps.now() })
      .where(eq(instances.instanceId, instanceId))
      .returning();
    row = updated ?? row;
  }
  if (!row.verified) await startVerification(deps.config, { kind: "instance", id: instanceId });
  return instanceView(row, (await nodeIdsOf(deps.db, [instanceId])).get(instanceId));
}

export async function minerInstances(db: AnyDatabase, hotkey: string): Promise<ReturnType<typeof instanceView>[]> {
  const rows = await db
    .select()
    .from(instances)
    .where(eq(instances.minerHotkey, hotkey))
    .orderBy(instances.createdAt, instances.instanceId);
  const links = await nodeIdsOf(
    db,
    rows.map((row) => row.instanceId),
  );
  return rows.map((row) => instanceView(row, links.get(row.instanceId)));
}

/**
 * Removes an instance: the row (and its node links), the audit row closed with `reason`,
 * `instance_deleted` to its miner (with the reason), and the router refreshed. False when
 * it was already gone (idempotent: concurrent removals announce once).
 */
export async function removeInstance(deps: MinerPlaneDeps, instanceId: string, reason: string): Promise<boolean> {
  const now = deps.now();
  const [gone] = await deps.db.delete(instances).where(eq(instances.instanceId, instanceId)).returning();
  if (!gone) return false;
  await deps.db
    .update(instanceAudit)
    .set({ deletedAt: now, deletionReason: reason })
    .where(and(eq(instanceAudit.instanceId, instanceId), isNull(instanceAudit.deletedAt)));
  await publishMinerEvent(deps, {
    reason: "instance_deleted",
    data: { instance_id: instanceId, chute_id: gone.chuteId, miner_hotkey: gone.minerHotkey, reason },
    recipients: [gone.minerHotkey],
  });
  if (gone.active && gone.verified) await refreshRouterQuietly(deps, gone.chuteId);
  return true;
}

/** Upstream `DELETE /instances/{chute_id}/{instance_id}` (purpose `instances`): 404 when not the miner's. */
export async function deleteInstance(
  deps: MinerPlaneDeps,
  hotkey: string,
  chuteId: string,
  instanceId: string,
): Promise<void> {
  await ownedInstance(deps.db, hotkey, chuteId, instanceId);
  await removeInstance(deps, instanceId, "miner initialized");
}

async function refreshRouterQuietly(deps: MinerPlaneDeps, chuteId: string): Promise<void> {
  try {
    await refreshChuteRouter(deps, chuteId);
  } catch (error) {
    // The router reloads its set from Postgres when it next starts cold; log and go on.
    deps.log.warn("router refresh failed", { chute_id: chuteId, ...errorFields(error) });
  }
}

export { refreshRouterQuietly };

/**
 * One failed call to an instance (an invocation the gateway could not complete, or a
 * health probe): the counter goes up atomically; at `INSTANCE_FAILURE_LIMIT` the instance
 * is removed. Returns the new count, or null when the instance is gone.
 */
export async function recordInstanceFailure(
  deps: MinerPlaneDeps,
  instanceId: string,
  reason: string,
): Promise<{ failures: number; removed: boolean } | null> {
  const [row] = await deps.db
    .update(instances)
    .set({ consecutiveFailures: sql`${instances.consecutiveFailures} + 1`, updatedAt: deps.now() })
    .where(eq(instances.instanceId, instanceId))
    .returning({ failures: instances.consecutiveFailures });
  if (!row) return null;
  const limit = deps.config.INSTANCE_FAILURE_LIMIT;
  if (row.failures < limit) return { failures: row.failures, removed: false };
  const removed = await removeInstance(deps, instanceId, `${row.failures} consecutive failures (last: ${reason})`);
  return { failures: row.failures, removed };
}

/** A successful call: the consecutive-failure counter goes back to 0 (one write only when it was not 0). */
export async function recordInstanceSuccess(deps: Pick<MinerPlaneDeps, "db">, instanceId: string): Promise<void> {
  await deps.db
    .update(instances)
    .set({ consecutiveFailures: 0 })
    .where(and(eq(instances.instanceId, instanceId), gt(instances.consecutiveFailures, 0)));
}

/**
 * Applies the gateway's verdicts on instances (`FlushResult.instanceOutcomes` of a metering
 * flush, oldest first): per instance, a success anywhere resets the count, and the failures
 * after the last success count towards removal. Runs after the invocations are committed,
 * off every request's path.
 */
export async function applyInstanceOutcomes(deps: MinerPlaneDeps, outcomes: readonly InstanceOutcome[]): Promise<void> {
  const byInstance = new Map<string, InstanceOutcome[]>();
  for (const outcome of outcomes) {
    const list = byInstance.get(outcome.instanceId) ?? [];
    list.push(outcome);
    byInstance.set(outcome.instanceId, list);
  }
  for (const [instanceId, list] of byInstance) {
    const lastSuccess = list.map((o) => o.outcome).lastIndexOf("success");
    if (lastSuccess >= 0) await recordInstanceSuccess(deps, instanceId);
    for (const failure of list.slice(lastSuccess + 1)) {
      const counted = await recordInstanceFailure(deps, instanceId, failure.reason);
      if (!counted || counted.removed) break;
    }
  }
}

/** `POST /_ping` with a fresh nonce; ok only when the answer is the MAC under the session key. */
export async function pingInstance(
  deps: Pick<MinerPlaneDeps, "config">,
  row: Pick<InstanceRow, "instanceId" | "host" | "port">,
  sessionKey: Uint8Array,
  timeoutMs = deps.config.MINER_CALL_TIMEOUT_MS,
): Promise<{ ok: true } | { ok: false; reason: string }> {
  const nonce = pingNonce();
  const reply = await callMiner(deps.config, {
    url: `${instanceBase(row)}/_ping`,
    body: { nonce },
    timeoutMs,
  });
  if (!reply.ok) return reply;
  const parsed = replyJson(reply);
  const mac = parsed.ok ? pingReplySchema.safeParse(parsed.value) : null;
  if (!mac?.success) return { ok: false, reason: "the ping answer has no valid mac" };
  if (mac.data.mac !== (await pingMac(sessionKey, row.instanceId, nonce))) {
    return { ok: false, reason: "the ping answer's mac is wrong (the instance does not hold the session key)" };
  }
  return { ok: true };
}

/** How many instances one probe round pings, how many at once, and how long each may take (fits the job's 50 s). */
export const PROBE_BATCH = 100;
export const PROBE_CONCURRENCY = 16;
export const PROBE_TIMEOUT_MS = 5_000;

/**
 * Periodic health probes: pings every routable instance (oldest-probed first would need a
 * column; a round covers up to `PROBE_BATCH`), counting failures and resetting on success.
 */
export async function probeInstances(
  deps: MinerPlaneDeps,
): Promise<{ probed: number; failed: number; removed: number }> {
  const rows = await deps.db
    .select()
    .from(instances)
    .where(and(eq(instances.active, true), eq(instances.verified, true)))
    .orderBy(sql`random()`)
    .limit(PROBE_BATCH);
  let failed = 0;
  let removed = 0;
  const queue = [...rows];
  const worker = async () => {
    for (let row = queue.shift(); row; row = queue.shift()) {
      let outcome: { ok: true } | { ok: false; reason: string };
      try {
        const key = row.sessionKey
          ? await openSessionKey(row.sessionKey, deps.config.WALLET_KEY, row.instanceId)
          : null;
        outcome = key ? await pingInstance(deps, row, key, PROBE_TIMEOUT_MS) : { ok: false, reason: "no session key" };
      } catch (error) {
        outcome = { ok: false, reason: (error as Error).message };
      }
      if (outcome.ok) {
        await recordInstanceSuccess(deps, row.instanceId);
      } else {
        failed++;
        const recorded = await recordInstanceFailure(deps, row.instanceId, `health probe: ${outcome.reason}`);
        if (recorded?.removed) removed++;
      }
    }
  };
  await Promise.all(Array.from({ length: PROBE_CONCURRENCY }, worker));
  return { probed: rows.length, failed, removed };
}

/** Instances whose verification never finished (a Verifier that died) are removed after `limitMs`. */
export async function sweepStuckInstances(deps: MinerPlaneDeps, limitMs: number): Promise<number> {
  const cutoff = new Date(deps.now().getTime() - limitMs);
  const stuck = await deps.db
    .select({ instanceId: instances.instanceId })
    .from(instances)
    .where(and(eq(instances.active, true), eq(instances.verified, false), lt(instances.updatedAt, cutoff)));
  for (const { instanceId } of stuck) {
    await removeInstance(deps, instanceId, "verification did not finish in time");
  }
  return stuck.length;
}
