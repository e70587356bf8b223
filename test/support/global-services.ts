/**
 * @module Global setup of the workers lane: starts the local services (a scratch
 * database on DATABASE_URL's server, or PGlite; the Upstash adapter over REDIS_URL, or
 * the embedded twin) and provides the Worker variables that point at them.
 */
import type { TestProject } from "vitest/node";
import { startLocalServices } from "../../infra/dev/services.ts";
import "./provided.ts";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const services = await startLocalServices({
    scratchFrom: process.env.DATABASE_URL || undefined,
    redisUrl: process.env.REDIS_URL || undefined,
  });
  project.provide("workerVars", services.workerVars);
  project.provide("servicesInfo", {
    postgres: services.postgres.kind,
    redis: services.redis.kind,
    databaseUrl: services.postgres.url,
  });
  return () => services.stop();
}
