/**
 * @module Postgres for local runs and tests: an embedded PGlite server when no
 * `DATABASE_URL` is given, scratch databases on a real server, and migrations.
 *
 * PGlite is Postgres compiled to WASM. It cannot run inside workerd (runtime WASM
 * compilation is forbidden there), so it runs in this Node process behind
 * `pglite-socket`, which speaks the Postgres wire protocol; the ws proxy then lets the
 * Worker's Neon driver reach it like any other server. pglite-socket runs one query at
 * a time and keeps an open transaction on its own connection, which is enough for a
 * developer's machine; tests and CI use a real server when `DATABASE_URL` is set.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { pgcrypto } from "@electric-sql/pglite/contrib/pgcrypto";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations", import.meta.url));

export interface RunningPostgres {
  url: string;
  close(): Promise<void>;
}

/**
 * Starts PGlite behind a wire-protocol socket. `dataDir` null keeps everything in
 * memory (tests); a path persists it between runs (`npm start`).
 */
export async function startEmbeddedPostgres(
  options: { dataDir?: string | null; port?: number } = {},
): Promise<RunningPostgres> {
  const dataDir = options.dataDir ?? null;
  if (dataDir) mkdirSync(path.dirname(dataDir), { recursive: true });
  const db = await PGlite.create(dataDir ?? undefined, { extensions: { pgcrypto } });
  const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: options.port ?? 0, maxConnections: 64 });
  await server.start();
  const port = Number(server.getServerConn().split(":").pop());
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    async close() {
      await server.stop();
      await db.close();
    },
  };
}

/**
 * Creates a fresh, uniquely named database on the server behind `adminUrl`, so that
 * parallel test runs never see each other's rows; `close()` drops it.
 */
export async function createScratchDatabase(adminUrl: string, prefix = "chutes_test"): Promise<RunningPostgres> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async close() {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** Applies every migration in `migrations/` that the database has not seen yet. */
export async function applyMigrations(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    // Migrations print NOTICEs (IF NOT EXISTS); they are not news.
    client.on("notice", () => {});
    await migrate(drizzle(client), { migrationsFolder: MIGRATIONS_DIR, migrationsSchema: "drizzle" });
  } finally {
    await client.end();
  }
}

/** True when a Postgres answers at `url` within `timeoutMs`. */
export async function canConnect(url: string, timeoutMs = 3000): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  try {
    await client.connect();
    await client.query("select 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}
