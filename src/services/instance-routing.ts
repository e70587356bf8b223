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
import type {
  AcquireOptions,
  AcquireResult,
  AttemptOutcome,
  ChuteRouter,
  LeaseRelease,
} from "../../durable-objects/chute-router.ts";
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

interface ReleaseBatch {
  leases: LeaseRelease[];
  /** Settles once the router has the batch. */
  delivered: Promise<void>;
  deliver(sending: Promise<void>): void;
}
const releases = new Map<string, ReleaseBatch>();

/**
 * Ends a lease with its outcome. Releases of one chute wait in this isolate for the next
 * `acquireLease` of that chute, which carries them in its RPC, or `RELEASE_BATCH_MS` at
 * most, then go in one `releaseMany`: under load a call costs the router one RPC, not two.
 * The promise resolves once the router has them.
 */
export function releaseLease(
  config: Pick<Config, "CHUTE_ROUTER">,
  chuteId: string,
  leaseId: string,
  outcome: AttemptOutcome,
): Promise<void> {
  let batch = releases.get(chuteId);
  if (!batch) {
    let deliver: (sending: Promise<void>) => void = () => {};
    const delivered = new Promise<void>((resolve) => {
      deliver = resolve;
    });
    const created: ReleaseBatch = { leases: [], delivered, deliver };
    batch = created;
    releases.set(chuteId, created);
    setTimeout(() => {
      if (releases.get(chuteId) !== created) return; // an acquire took it
      releases.delete(chuteId);
      created.deliver(chuteRouter(config, chuteId).releaseMany(created.leases));
    }, RELEASE_BATCH_MS);
  }
  batch.leases.push({ leaseId, outcome });
  return batch.delivered;
}

/** Leases an instance of the chute, handing the router this isolate's waiting releases on the way. */
export function acquireLease(
  config: Pick<Config, "CHUTE_ROUTER">,
  chuteId: string,
  options: Omit<AcquireOptions, "chuteId" | "release">,
): Promise<AcquireResult> {
  const router = chuteRouter(config, chuteId);
  const batch = releases.get(chuteId);
  if (!batch) return router.acquire({ ...options, chuteId });
  releases.delete(chuteId);
  const result = router.acquire({ ...options, chuteId, release: batch.leases });
  // Should the acquire fail, the releases still go, on their own.
  batch.deliver(
    result.then(
      () => undefined,
      () => router.releaseMany(batch.leases),
    ),
  );
  return result;
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
