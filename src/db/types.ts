/**
 * @module The database type services take when they also run outside the Worker (operator
 * scripts, the dev launcher, Node tests): any drizzle Postgres database over the schema,
 * the Worker's Neon one or node-postgres. Free of Worker types on purpose.
 */
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import type * as schema from "./schema.ts";

export type AnyDatabase = PgDatabase<PgQueryResultHKT, typeof schema>;
