/**
 * @module What the global setups hand to the tests (vitest `provide`/`inject`).
 */
declare module "vitest" {
  export interface ProvidedContext {
    /** Variables pointing the Worker at the local services (workers lane). */
    workerVars: Record<string, string>;
    /** Which real or embedded services back the run. */
    servicesInfo: { postgres: string; redis: string; databaseUrl: string };
    /** The fake subtensor node seeded with chain-fixture.ts at WORKERS_RPC_NETUID (workers lane). */
    fakeSubtensorUrl: string;
    /** Base URL of the platform started by `npm start` (e2e lane). */
    platformUrl: string;
    /** Direct Postgres URL of the platform's database (e2e lane). */
    platformDatabaseUrl: string;
    /** The dev chain of that platform (e2e lane). */
    devChainUrl: string;
  }
}

export {};
