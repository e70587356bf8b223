/**
 * @module Dependency health: can this request reach Postgres and Redis right now?
 * Each check has its own time limit, so a hung dependency reads as down instead of
 * hanging the caller.
 */
import { sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import type { Redis } from "../lib/redis.ts";
import { withTimeout } from "../lib/time.ts";

export type DependencyName = "postgres" | "redis";

export interface DependencyStatus {
  ok: boolean;
  latencyMs: number;
  error?: string;
}

export type HealthReport = Record<DependencyName, DependencyStatus>;

async function timed(check: () => Promise<unknown>, timeoutMs: number): Promise<DependencyStatus> {
  const started = Date.now();
  try {
    await withTimeout(check(), timeoutMs);
    return { ok: true, latencyMs: Date.now() - started };
  } catch (error) {
    return { ok: false, latencyMs: Date.now() - started, error: (error as Error).message };
  }
}

export async function checkDependencies(deps: { db: Database; redis: Redis }, timeoutMs = 3000): Promise<HealthReport> {
  const [postgres, redis] = await Promise.all([
    timed(() => deps.db.execute(sql`select 1`), timeoutMs),
    timed(async () => {
      const reply = await deps.redis.ping();
      if (reply !== "PONG") throw new Error(`unexpected PING reply ${JSON.stringify(reply)}`);
    }, timeoutMs),
  ]);
  return { postgres, redis };
}

/** The dependencies that are down, in a stable order. */
export function downDependencies(report: HealthReport): DependencyName[] {
  return (Object.keys(report) as DependencyName[]).filter((name) => !report[name].ok);
}
