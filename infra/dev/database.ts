/**
 * @module drizzle over node-postgres for operator scripts, the launcher and Node tests:
 * the same schema and services as the Worker, over a plain connection to DATABASE_URL.
 */
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import * as schema from "../../src/db/schema.ts";
import type { AnyDatabase } from "../../src/db/types.ts";

/** Runs `fn` with a database on `url` and closes the connection after it. */
export async function withDatabase<T>(url: string, fn: (db: AnyDatabase) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(drizzle(client, { schema }));
  } finally {
    await client.end();
  }
}
