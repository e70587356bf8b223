/**
 * @module The permission bits of `users.permissions_bitmask`.
 *
 * Bits 0–5 are upstream's (same values, same meaning). `admin` is this project's
 * platform-operator bit; it sits at bit 30, far above the bits upstream added later
 * (6–11), so those can be adopted without renumbering. Operators grant it with
 * `npm run admin:grant` (infra/ops), never over HTTP.
 *
 * Pure and dependency-free: the Worker and the Node-side operator script share it.
 */

export const PERMISSIONS = {
  /** May build images and deploy chutes (granted by the developer deposit or a link). */
  developer: 1,
  /** May create API-only users. */
  create_user: 2,
  update_user: 4,
  delete_user: 8,
  /** Invocations are free; no balance check. */
  free_account: 16,
  /** No per-user or per-IP rate limits. */
  unlimited: 32,
  /** Platform operator: admin-only routes (e.g. registering GPU agents). */
  admin: 2 ** 30,
} as const;

export type Permission = keyof typeof PERMISSIONS;

/** Every permission name, alphabetical (the order `permissions` lists them in). */
export const PERMISSION_NAMES = (Object.keys(PERMISSIONS) as Permission[]).sort();

export function isPermission(name: string): name is Permission {
  return Object.hasOwn(PERMISSIONS, name);
}

// BigInt, because JavaScript's bitwise operators truncate to 32 signed bits and the
// column is a 64-bit bigint.
export function hasPermission(bitmask: number, permission: Permission): boolean {
  return (BigInt(bitmask) & BigInt(PERMISSIONS[permission])) !== 0n;
}

/** The names of the permissions set in `bitmask`, alphabetical. */
export function permissionNames(bitmask: number): Permission[] {
  return PERMISSION_NAMES.filter((name) => hasPermission(bitmask, name));
}

/** The bitmask with every permission in `names` set. */
export function permissionBits(names: readonly Permission[]): number {
  return Number(names.reduce((mask, name) => mask | BigInt(PERMISSIONS[name]), 0n));
}
