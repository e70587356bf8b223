/**
 * @module Granting and revoking user permissions from the operator's shell: how the
 * first admin is made. It talks to Postgres directly (DATABASE_URL), so there is no
 * HTTP route that could be abused to promote anyone. Used by `npm run admin:grant`.
 */
import pg from "pg";
import {
  isPermission,
  PERMISSION_NAMES,
  type Permission,
  permissionBits,
  permissionNames,
} from "../../src/lib/permissions.ts";

export interface PermissionChange {
  username: string;
  permissions: Permission[];
  revoke: boolean;
}

export const USAGE = [
  "usage: npm run admin:grant -- [--revoke] <username> <permission>...",
  `permissions: ${PERMISSION_NAMES.join(", ")}`,
].join("\n");

export class UsageError extends Error {}

/** Reads `[--revoke] <username> <permission>...`; throws `UsageError` on anything else. */
export function parseGrantArgs(argv: readonly string[]): PermissionChange {
  const revoke = argv.includes("--revoke");
  const [username, ...names] = argv.filter((arg) => arg !== "--revoke");
  if (!username || names.length === 0) throw new UsageError(USAGE);
  const unknown = names.filter((name) => !isPermission(name));
  if (unknown.length > 0) throw new UsageError(`unknown permission ${unknown.join(", ")}\n${USAGE}`);
  return { username, permissions: names.filter(isPermission), revoke };
}

export interface PermissionResult {
  userId: string;
  username: string;
  bitmask: number;
  permissions: Permission[];
}

/** Sets (or clears) the bits in one UPDATE; null when no user has that username. */
export async function changePermissions(
  databaseUrl: string,
  change: PermissionChange,
): Promise<PermissionResult | null> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ user_id: string; username: string; permissions_bitmask: string }>(
      `update users
          set permissions_bitmask = case when $3 then permissions_bitmask & ~$2::bigint
                                         else permissions_bitmask | $2::bigint end,
              updated_at = now()
        where username = $1
        returning user_id, username, permissions_bitmask`,
      [change.username, permissionBits(change.permissions), change.revoke],
    );
    const [row] = rows;
    if (!row) return null;
    const bitmask = Number(row.permissions_bitmask);
    return { userId: row.user_id, username: row.username, bitmask, permissions: permissionNames(bitmask) };
  } finally {
    await client.end();
  }
}
