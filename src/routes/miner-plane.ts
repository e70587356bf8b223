/**
 * @module What the miner-plane routes share: the dependency set its services take, built
 * from the request's.
 */
import type { Context } from "hono";
import type { AppEnv } from "../app.ts";
import type { MinerPlaneDeps } from "../services/nodes.ts";

export function planeDeps<E extends AppEnv>(c: Context<E>): MinerPlaneDeps {
  const { deps, config, log } = c.var;
  return { db: deps.db, config, log, now: () => deps.now() };
}
