/**
 * @module Global setup of the e2e lane: runs the real `npm start` launcher on a free
 * port (./platform.ts) and stops it with SIGINT afterwards, checking that it exits
 * cleanly. Set E2E_BASE_URL to test an already running platform.
 */
import type { TestProject } from "vitest/node";
import { startPlatform } from "./platform.ts";
import "./provided.ts";

/**
 * Gateway settings short enough for tests (test/e2e/gateway.test.ts): a slow instance
 * times out in seconds, keepalive comments come quickly, the rate limit is reached soon.
 */
export const E2E_WORKER_VARS = {
  INVOKE_FIRST_BYTE_TIMEOUT_MS: "3000",
  INVOKE_KEEPALIVE_MS: "500",
  RATE_LIMIT_COUNT: "30",
  INSTANCE_MAX_CONCURRENCY: "256",
  METERING_FLUSH_MS: "200",
};

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.E2E_BASE_URL) {
    project.provide("platformUrl", process.env.E2E_BASE_URL);
    project.provide("platformDatabaseUrl", process.env.DATABASE_URL ?? "");
    project.provide("devChainUrl", process.env.E2E_DEV_CHAIN_URL ?? "");
    return async () => {};
  }
  const platform = await startPlatform({ vars: E2E_WORKER_VARS });
  project.provide("platformUrl", platform.url);
  project.provide("platformDatabaseUrl", platform.databaseUrl);
  project.provide("devChainUrl", platform.devChainUrl);
  return () => platform.stop();
}
