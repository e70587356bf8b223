/**
 * @module The metagraph mirror (`metagraph_nodes`): syncing it from the chain, and the
 * lookups miner authentication needs ("is this hotkey registered on the subnet?").
 *
 * One sync, all or nothing (upstream metasync, decided further in docs/architecture.md):
 * fetch every neuron of the netuid first; then in one transaction upsert the rows whose
 * checksum changed and delete the netuid's rows whose hotkey left the subnet, except
 * manual entries (`node_id < 0`). Deleting a hotkey cascades (schema FKs) to its GPUs
 * (`nodes`), its `instances` and their `instance_nodes`; the audit rows of those
 * instances are closed first. A failed fetch or an abort before commit changes nothing.
 */
import { and, eq, inArray, isNull, sql } from "drizzle-orm";
import { raoToTao } from "../chain/convert.ts";
import type { Chain, Neuron } from "../chain/types.ts";
import type { Database } from "../db/client.ts";
import { instanceAudit, instances, metagraphNodes } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";

export type MetagraphRow = typeof metagraphNodes.$inferSelect;

/** Why the sync removed an instance (`instance_audit.deletion_reason`). */
export const DEREGISTERED_REASON = "miner hotkey deregistered from the subnet";

// First key of the advisory lock that serialises syncs of one netuid (second key: netuid).
const SYNC_LOCK = 0x6d657461; // "meta"

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The row a neuron becomes; `checksum` covers every synced field. */
export async function neuronRow(neuron: Neuron, syncedAt: Date): Promise<typeof metagraphNodes.$inferInsert> {
  const fields = {
    hotkey: neuron.hotkey,
    netuid: neuron.netuid,
    nodeId: neuron.uid,
    coldkey: neuron.coldkey,
    stake: raoToTao(neuron.stakeRao),
    incentive: neuron.incentive,
    trust: neuron.trust,
    vtrust: neuron.validatorTrust,
    ip: neuron.axon?.ip ?? null,
    port: neuron.axon?.port ?? null,
    ipType: neuron.axon?.ipType ?? null,
    protocol: neuron.axon?.protocol ?? null,
    lastUpdated: neuron.lastUpdate,
  };
  // The exact rao, not the float, so a change below float precision still counts.
  const checksum = await sha256Hex(JSON.stringify({ ...fields, stake: neuron.stakeRao.toString() }));
  return { ...fields, checksum, syncedAt };
}

export interface MetagraphSyncDeps {
  db: Database;
  chain: Pick<Chain, "getNeurons">;
  now(): Date;
  /** Aborting before commit rolls the sync back. */
  signal?: AbortSignal;
}

export interface MetagraphSyncResult {
  netuid: number;
  neurons: number;
  inserted: number;
  updated: number;
  unchanged: number;
  /** Hotkeys removed because they left the subnet. */
  removed: string[];
  /** Instances whose audit row was closed because their miner was removed. */
  closedInstances: number;
}

export async function syncMetagraph(deps: MetagraphSyncDeps, netuid: number): Promise<MetagraphSyncResult> {
  const neurons = await deps.chain.getNeurons(netuid);
  // A subnet never has no neurons: an empty answer is a wrong netuid or a broken node,
  // and believing it would deregister every miner at once.
  if (neurons.length === 0) throw new Error(`the chain returned no neurons for netuid ${netuid}`);
  const now = deps.now();
  const rows = await Promise.all(neurons.map((n) => neuronRow(n, now)));
  deps.signal?.throwIfAborted();

  return deps.db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${SYNC_LOCK}, ${netuid})`);
    const existing = await tx
      .select({ hotkey: metagraphNodes.hotkey, checksum: metagraphNodes.checksum, nodeId: metagraphNodes.nodeId })
      .from(metagraphNodes)
      .where(eq(metagraphNodes.netuid, netuid));
    const current = new Map(existing.map((row) => [row.hotkey, row.checksum]));
    const fetched = new Set(rows.map((row) => row.hotkey));

    const removed = existing.filter((row) => row.nodeId >= 0 && !fetched.has(row.hotkey)).map((row) => row.hotkey);
    let closedInstances = 0;
    if (removed.length > 0) {
      const closed = await tx
        .update(instanceAudit)
        .set({ deletedAt: now, deletionReason: DEREGISTERED_REASON })
        .where(
          and(
            isNull(instanceAudit.deletedAt),
            inArray(
              instanceAudit.instanceId,
              tx.select({ id: instances.instanceId }).from(instances).where(inArray(instances.minerHotkey, removed)),
            ),
          ),
        )
        .returning({ id: instanceAudit.instanceId });
      closedInstances = closed.length;
      await tx
        .delete(metagraphNodes)
        .where(and(eq(metagraphNodes.netuid, netuid), inArray(metagraphNodes.hotkey, removed)));
    }

    const changed = rows.filter((row) => current.get(row.hotkey) !== row.checksum);
    if (changed.length > 0) {
      await tx
        .insert(metagraphNodes)
        .values(changed)
        .onConflictDoUpdate({
          target: metagraphNodes.hotkey,
          set: {
            netuid: sql`excluded.netuid`,
            nodeId: sql`excluded.node_id`,
            coldkey: sql`excluded.coldkey`,
            stake: sql`excluded.stake`,
            incentive: sql`excluded.incentive`,
            trust: sql`excluded.trust`,
            vtrust: sql`excluded.vtrust`,
            ip: sql`excluded.ip`,
            port: sql`excluded.port`,
            ipType: sql`excluded.ip_type`,
            protocol: sql`excluded.protocol`,
            checksum: sql`excluded.checksum`,
            lastUpdated: sql`excluded.last_updated`,
            syncedAt: sql`excluded.synced_at`,
          },
        });
    }
    // Past this point the transaction commits; a timeout that fired meanwhile rolls it back.
    deps.signal?.throwIfAborted();
    const inserted = changed.filter((row) => !current.has(row.hotkey)).length;
    return {
      netuid,
      neurons: rows.length,
      inserted,
      updated: changed.length - inserted,
      unchanged: rows.length - changed.length,
      removed,
      closedInstances,
    };
  });
}

/** The mirror row of a hotkey (any netuid), or null. One primary-key lookup. */
export async function getMinerByHotkey(db: Database, hotkey: string): Promise<MetagraphRow | null> {
  const [row] = await db.select().from(metagraphNodes).where(eq(metagraphNodes.hotkey, hotkey)).limit(1);
  return row ?? null;
}

/**
 * Whether `hotkey` is registered on `netuid`: what makes a hotkey a miner. Every miner
 * route and the miner socket check this after verifying the hotkey's signature.
 */
export async function isRegisteredMiner(db: AnyDatabase, hotkey: string, netuid: number): Promise<boolean> {
  const rows = await db
    .select({ hotkey: metagraphNodes.hotkey })
    .from(metagraphNodes)
    .where(and(eq(metagraphNodes.hotkey, hotkey), eq(metagraphNodes.netuid, netuid)))
    .limit(1);
  return rows.length > 0;
}
