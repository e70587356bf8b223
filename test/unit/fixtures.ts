/**
 * @module A minimal valid Worker environment for unit tests that run Worker code in Node:
 * bindings are stand-ins that pass the env schema's shape checks, and the URLs point
 * nowhere (tests that reach a service belong in the workers lane).
 */
const namespace = { idFromName: () => ({}) };

export const validEnv = {
  DATABASE_URL: "postgres://u:p@127.0.0.1:1/app",
  UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1",
  UPSTASH_REDIS_REST_TOKEN: "t",
  WALLET_KEY: "11".repeat(32),
  PG_KEY: "22".repeat(32),
  BUCKET: { put: () => {} },
  MINER_HUB: namespace,
  CHUTE_ROUTER: namespace,
  EVENTS_HUB: namespace,
  BUILD_LOGS: namespace,
  VERIFIER: namespace,
  METERING: namespace,
};

/** An ExecutionContext for `app.request()` that drops background work. */
export const testExecutionContext = {
  waitUntil: () => {},
  passThroughOnException: () => {},
  props: {},
} as unknown as ExecutionContext;
