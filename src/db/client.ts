/**
 * @module Opens Postgres for one request (or one Durable Object operation).
 *
 * A Neon `Pool` is created per request and ended after it (`waitUntil`): workerd forbids
 * using an I/O object created by another request ("Cannot perform I/O on behalf of a
 * different request"), so a pool in module scope would fail on the second request. The
 * Pool (WebSocket) driver is used rather than HTTP because the platform needs
 * interactive transactions (billing, registration).
 *
 * Locally, `LOCAL_WSPROXY` points the same driver at infra/dev/ws-proxy.ts, which pipes
 * to a real Postgres (or PGlite); production talks to Neon directly.
 */
import { neonConfig, Pool, type PoolClient } from "@neondatabase/serverless";
import { drizzle, type NeonDatabase } from "drizzle-orm/neon-serverless";
import type { Config } from "../env.ts";
import * as schema from "./schema.ts";

export type Database = NeonDatabase<typeof schema> & { $client: Pool };

export interface DatabaseHandle {
  db: Database;
  /** Ends the pool; call from `waitUntil` once the request is done with the database. */
  close(): Promise<void>;
}

/** Points the driver at the local ws proxy (dev and tests) or leaves Neon's defaults. */
function configureDriver(localProxy: string | undefined): void {
  if (!localProxy) return;
  neonConfig.wsProxy = (host, port) => `${localProxy}?address=${host}:${port}`;
  neonConfig.useSecureWebSocket = false;
  // Pipelining the startup only works with cleartext-password auth; local servers use
  // trust or SCRAM, so the driver must wait for each step.
  neonConfig.pipelineConnect = false;
  neonConfig.pipelineTLS = false;
}

export function openDatabase(config: Pick<Config, "DATABASE_URL" | "LOCAL_WSPROXY">): DatabaseHandle {
  configureDriver(config.LOCAL_WSPROXY);
  // Two connections cover a transaction plus one concurrent read; each connection is a
  // WebSocket and counts against the request's six simultaneous connections.
  const pool = new Pool({ connectionString: config.DATABASE_URL, max: 2, connectionTimeoutMillis: 10_000 });
  // An idle client that errors (server restart) must not become an unhandled error.
  pool.on("error", () => {});
  return {
    db: drizzle({ client: pool, schema }),
    close: () => pool.end(),
  };
}

export interface Connection {
  /** drizzle over this one connection: its transactions are the connection's. */
  db: NeonDatabase<typeof schema>;
  /** The same connection, for array-mode reads and cursors (src/db/cursor.ts). */
  client: PoolClient;
}

/**
 * Runs `fn` on one connection checked out of the pool (a cursor and the statements around
 * it must share one), released afterwards; a connection `fn` failed on is discarded.
 */
export async function withConnection<T>(db: Database, fn: (connection: Connection) => Promise<T>): Promise<T> {
  const client = await db.$client.connect();
  let failure: Error | undefined;
  try {
    return await fn({ db: drizzle({ client, schema }), client });
  } catch (error) {
    failure = error instanceof Error ? error : new Error(String(error));
    throw error;
  } finally {
    client.release(failure);
  }
}
