/**
 * @module Global setup of the workers lane: starts the local services (a scratch
 * database on DATABASE_URL's server, or PGlite; the Upstash adapter over REDIS_URL, or
 * the embedded twin; the dev chain over a scratch copy of the dev metagraph) and
 * provides the Worker variables that point at them, plus a fake subtensor node
 * (test/support/fake-subtensor.ts) for the tests of the rpc chain inside workerd, and,
 * when `docker-registry` is installed, a real registry origin behind the `registry.` front
 * (`REGISTRY_ORIGIN_URL`).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { onPath, startLocalRegistry } from "../../infra/dev/registry.ts";
import { startLocalServices } from "../../infra/dev/services.ts";
import { fixtureChain, WORKERS_RPC_NETUID, WORKERS_SCORING_NETUID } from "./chain-fixture.ts";
import { startFakeSubtensor } from "./fake-subtensor.ts";
import "./provided.ts";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const scratch = mkdtempSync(path.join(tmpdir(), "chutes-workers-"));
  const services = await startLocalServices({
    scratchFrom: process.env.DATABASE_URL || undefined,
    redisUrl: process.env.REDIS_URL || undefined,
    metagraphFile: path.join(scratch, "metagraph.json"),
  });
  const subtensor = await startFakeSubtensor(fixtureChain(WORKERS_RPC_NETUID, WORKERS_SCORING_NETUID));
  const registry = onPath("docker-registry")
    ? await startLocalRegistry({ dataDir: path.join(scratch, "registry") })
    : null;
  project.provide("workerVars", {
    ...services.workerVars,
    ...(registry ? { REGISTRY_ORIGIN_URL: registry.url } : {}),
  });
  project.provide("servicesInfo", {
    postgres: services.postgres.kind,
    redis: services.redis.kind,
    databaseUrl: services.postgres.url,
  });
  project.provide("fakeSubtensorUrl", subtensor.url);
  return async () => {
    await subtensor.close();
    await registry?.stop();
    await services.stop();
    rmSync(scratch, { recursive: true, force: true });
  };
}
