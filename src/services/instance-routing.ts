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

/** Loopback, private, link-local and unspecified literals (refused as miner hosts outside dev and tests). */
export function isPrivateHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  if (h === "localhost" || h.endsWith(".localhost") || h === "::1" || h === "::" || h.startsWith("fe80:")) return true;
  if (/^f[cd][0-9a-f]{2}:/.test(h)) return true;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}$/.exec(h);
  if (!v4) return false;
  const a = Number(v4[1]);
  const b = Number(v4[2]);
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 100 && b >= 64 && b <= 127)
  );
}

/** Whether this deployment may call instances on private addresses (development and tests only). */
export const allowsPrivateInstanceHosts = (config: Pick<Config, "ENVIRONMENT">) =>
  config.ENVIRONMENT === "development" || config.ENVIRONMENT === "test";

export async function loadRoutableInstances(
  db: AnyDatabase,
  config: Pick<Config, "ENVIRONMENT" | "INSTANCE_MAX_CONCURRENCY">,
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
  const allowPrivate = allowsPrivateInstanceHosts(config);
  return rows
    .filter((row) => allowPrivate || !isPrivateHost(row.host))
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
