/**
 * @module Which instances the per-chute router may offer (the routing hand-off of the
 * instance contract): a chute's active AND verified instances with a session key, read
 * from Postgres. `refreshChuteRouter` pushes them into the chute's `ChuteRouter` after
 * an instance becomes active+verified, is deleted, or is removed for failures; a cold
 * router reads them itself with `loadRoutableInstances` on first use.
 *
 * The router hands the sealed session key to the Worker, which opens it (never the other
 * way round: the plain key never leaves the isolate that uses it).
 */
import { and, eq, isNotNull } from "drizzle-orm";
import type { AttemptOutcome, ChuteRouter } from "../../durable-objects/chute-router.ts";
import { instances } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";
import type { Config } from "../env.ts";
import { checkIpLiteral } from "../lib/miner-hosts.ts";

export interface RoutableInstance {
  instanceId: string;
  host: string;
  port: number;
  /** How many invocations it may serve at once. */
  maxConcurrency: number;
  minerUid: number;
  minerHotkey: string;
  /** `instances.session_key` as stored (sealed with WALLET_KEY). */
  sealedSessionKey: string;
}

export async function loadRoutableInstances(
  db: AnyDatabase,
  config: Pick<Config, "ALLOW_LOOPBACK_MINERS" | "INSTANCE_MAX_CONCURRENCY">,
  chuteId: string,
): Promise<RoutableInstance[]> {
  const rows = await db
    .select({
      instanceId: instances.instanceId,
      host: instances.host,
      port: instances.port,
      minerUid: instances.minerUid,
      minerHotkey: instances.minerHotkey,
      sealedSessionKey: instances.sessionKey,
    })
    .from(instances)
    .where(
      and(
        eq(instances.chuteId, chuteId),
        eq(instances.active, true),
        eq(instances.verified, true),
        isNotNull(instances.sessionKey),
      ),
    );
  // Hosts were checked at announce; an address literal is checked again here so that a
  // row written before a configuration change (loopback allowed in dev) is never called.
  return rows
    .filter((row) => checkIpLiteral(row.host, config.ALLOW_LOOPBACK_MINERS)?.ok ?? true)
    .map((row) => ({
      ...row,
      sealedSessionKey: row.sealedSessionKey ?? "",
      maxConcurrency: config.INSTANCE_MAX_CONCURRENCY,
    }));
}

export function chuteRouter(config: Pick<Config, "CHUTE_ROUTER">, chuteId: string): DurableObjectStub<ChuteRouter> {
  return config.CHUTE_ROUTER.get(config.CHUTE_ROUTER.idFromName(chuteId)) as DurableObjectStub<ChuteRouter>;
}

const RELEASE_BATCH_MS = 10;
const releases = new Map<string, { leases: { leaseId: string; outcome: AttemptOutcome }[]; sent: Promise<void> }>();

/**
 * Ends a lease with its outcome. Releases of one chute within `RELEASE_BATCH_MS` in this
 * isolate travel in one RPC; the promise resolves once the router has them.
 */
export function releaseLease(
  config: Pick<Config, "CHUTE_ROUTER">,
  chuteId: string,
  leaseId: string,
  outcome: AttemptOutcome,
): Promise<void> {
  let batch = releases.get(chuteId);
  if (!batch) {
    const leases: { leaseId: string; outcome: AttemptOutcome }[] = [];
    const sent = new Promise((resolve) => setTimeout(resolve, RELEASE_BATCH_MS)).then(() => {
      releases.delete(chuteId);
      return chuteRouter(config, chuteId).releaseMany(leases);
    });
    batch = { leases, sent };
    releases.set(chuteId, batch);
  }
  batch.leases.push({ leaseId, outcome });
  return batch.sent;
}

/** Pushes the chute's current routable set into its router. */
export async function refreshChuteRouter(
  deps: { db: AnyDatabase; config: Config },
  chuteId: string,
): Promise<RoutableInstance[]> {
  const set = await loadRoutableInstances(deps.db, deps.config, chuteId);
  await chuteRouter(deps.config, chuteId).setInstances(set);
  return set;
}
