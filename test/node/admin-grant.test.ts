/**
 * The operator's permission script against a real database: a scratch database on
 * DATABASE_URL's server when set (CI), else embedded PGlite.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyMigrations,
  createScratchDatabase,
  type RunningPostgres,
  startEmbeddedPostgres,
} from "../../infra/dev/postgres.ts";
import { changePermissions, parseGrantArgs, UsageError } from "../../infra/ops/permissions.ts";

const CLI = fileURLToPath(new URL("../../infra/ops/admin-grant-cli.ts", import.meta.url));
let postgres: RunningPostgres;

beforeAll(async () => {
  postgres = process.env.DATABASE_URL
    ? await createScratchDatabase(process.env.DATABASE_URL, "chutes_ops")
    : await startEmbeddedPostgres({ dataDir: null });
  await applyMigrations(postgres.url);
}, 60_000);
afterAll(() => postgres?.close());

async function newUser(permissionsBitmask = 0): Promise<string> {
  const username = `op_${randomUUID().slice(0, 8)}`;
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  try {
    const id = randomUUID();
    await client.query(
      `insert into users (user_id, username, coldkey, fingerprint_hash, payment_address, developer_payment_address, permissions_bitmask)
       values ($1, $2, 'cold', $1, 'pay-' || $1, 'dev-' || $1, $3)`,
      [id, username, permissionsBitmask],
    );
  } finally {
    await client.end();
  }
  return username;
}

describe("admin:grant", () => {
  it("parses its arguments and refuses unknown permissions", () => {
    expect(parseGrantArgs(["alice", "admin", "developer"])).toEqual({
      username: "alice",
      permissions: ["admin", "developer"],
      revoke: false,
    });
    expect(parseGrantArgs(["--revoke", "alice", "admin"]).revoke).toBe(true);
    expect(() => parseGrantArgs(["alice"])).toThrow(UsageError);
    expect(() => parseGrantArgs(["alice", "root"])).toThrow(/unknown permission root/);
  });

  it("grants and revokes bits, leaving the others alone", async () => {
    const username = await newUser(32);
    const granted = await changePermissions(postgres.url, {
      username,
      permissions: ["admin", "developer"],
      revoke: false,
    });
    expect(granted).toMatchObject({
      username,
      bitmask: 2 ** 30 + 32 + 1,
      permissions: ["admin", "developer", "unlimited"],
    });
    const revoked = await changePermissions(postgres.url, { username, permissions: ["developer"], revoke: true });
    expect(revoked?.permissions).toEqual(["admin", "unlimited"]);
    expect(
      await changePermissions(postgres.url, { username: "nobody_here", permissions: ["admin"], revoke: false }),
    ).toBeNull();
  });

  it("runs as a command with clear exit codes", async () => {
    const username = await newUser();
    // Asynchronously: embedded PGlite is served by this very process.
    const run = (...args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        const env = { ...process.env, DATABASE_URL: postgres.url };
        execFile(process.execPath, [CLI, ...args], { env }, (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
        );
      });
    const ok = await run(username, "admin");
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`${username} (`);
    expect(ok.stdout).toContain("now has: admin");
    expect((await run(username)).code).toBe(2);
    expect((await run("nobody_here", "admin")).code).toBe(1);
  });
});
