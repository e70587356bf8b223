/**
 * @module The test lanes, all run by `npm test`:
 * - unit: pure logic in Node (test/unit: Worker code; test/node: the Node-side services);
 * - workers: the Worker, its Durable Objects, R2 and real Postgres/Redis inside workerd
 *   (`@cloudflare/vitest-pool-workers`), the local services started by a global setup;
 * - e2e: black-box tests against a real `npm start` (wrangler dev) on a free port.
 *
 * With DATABASE_URL / REDIS_URL set (CI), Postgres and Redis are those real servers
 * (each run gets its own scratch database); otherwise the embedded defaults.
 */
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { TEST_SUBNET_OWNER, TEST_VALIDATORS } from "./test/support/chutes-cli.ts";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts", "test/node/**/*.test.ts"],
          environment: "node",
          // test/node spawns real processes (the agent, the verifier CLI); 5 s is too tight
          // when the other lanes share the machine's two cores.
          testTimeout: 20_000,
        },
      },
      {
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                ...inject("workerVars"),
                ENVIRONMENT: "test",
                LOG_LEVEL: "warn",
                VALIDATOR_HOTKEYS: TEST_VALIDATORS.map((key) => key.ss58).join(","),
                SUBNET_OWNER_HOTKEYS: TEST_SUBNET_OWNER.ss58,
              },
            },
          })),
        ],
        test: {
          name: "workers",
          include: ["test/workers/**/*.test.ts"],
          globalSetup: ["test/support/global-services.ts"],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/support/global-platform.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
