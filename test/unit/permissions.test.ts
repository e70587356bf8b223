import { describe, expect, it } from "vitest";
import {
  hasPermission,
  isPermission,
  PERMISSION_NAMES,
  PERMISSIONS,
  permissionBits,
  permissionNames,
} from "../../src/lib/permissions.ts";

describe("permission bits", () => {
  it("keeps upstream's bit values", () => {
    expect(PERMISSIONS).toMatchObject({
      developer: 1,
      create_user: 2,
      update_user: 4,
      delete_user: 8,
      free_account: 16,
      unlimited: 32,
    });
    expect(PERMISSIONS.admin).toBe(1073741824);
  });

  it("reads and lists bits alphabetically", () => {
    const mask = permissionBits(["unlimited", "developer", "admin"]);
    expect(mask).toBe(1 + 32 + 2 ** 30);
    expect(permissionNames(mask)).toEqual(["admin", "developer", "unlimited"]);
    expect(hasPermission(mask, "free_account")).toBe(false);
    expect(PERMISSION_NAMES).toEqual([...PERMISSION_NAMES].sort());
  });

  it("reads bits of masks wider than 32 bits", () => {
    const wide = 2 ** 40 + PERMISSIONS.developer;
    expect(hasPermission(wide, "developer")).toBe(true);
    expect(hasPermission(2 ** 40, "developer")).toBe(false);
  });

  it("knows its names and nothing else", () => {
    expect(isPermission("admin")).toBe(true);
    expect(isPermission("toString")).toBe(false);
    expect(isPermission("root")).toBe(false);
  });
});
