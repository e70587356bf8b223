/**
 * @module The hand-off from the miner plane to routing (docs/protocols.md, "Instance
 * protocol"): `refreshChuteRouter` reads a chute's routable instances (`active AND
 * verified`) from Postgres and replaces the set held by its `ChuteRouter` Durable Object.
 * Called after an instance becomes routable, is deleted, or is removed for failures.
 */
import { and, eq } from "drizzle-orm";
import type { ChuteRouter, RoutableInstance } from "../../durable-objects/chute-router.ts";
import { instances } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";
import type { Config } from "../env.ts";

/** Invocations one instance serves at once until chutes carry their own concurrency. */
export const DEFAULT_INSTANCE_CONCURRENCY = 8;

/** The routable instances of a chute, as the router holds them. */
export async function routableInstances(db: AnyDatabase, chuteId: string): Promise<RoutableInstance[]> {
  const rows = await db
    .select({ instanceId: instances.instanceId, host: instances.host, port: instances.port })
    .from(instances)
    .where(and(eq(instances.chuteId, chuteId), eq(instances.active, true), eq(instances.verified, true)))
    .orderBy(instances.instanceId);
  return rows.map((row) => ({ ...row, maxConcurrency: DEFAULT_INSTANCE_CONCURRENCY }));
}

export async function refreshChuteRouter(
  deps: { db: AnyDatabase; config: Pick<Config, "CHUTE_ROUTER"> },
  chuteId: string,
): Promise<RoutableInstance[]> {
  const set = await routableInstances(deps.db, chuteId);
  const namespace = deps.config.CHUTE_ROUTER as unknown as DurableObjectNamespace<ChuteRouter>;
  await namespace.get(namespace.idFromName(chuteId)).setInstances(set);
  return set;
}
