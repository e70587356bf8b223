/**
 * wrangler.toml and src/env.ts must agree on the public development wallet keys, or the
 * production refusal in parseConfig would guard the wrong values; and no deployed
 * environment may carry wallet keys as plain vars.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const read = (path: string) => readFileSync(new URL(path, import.meta.url), "utf8");
const toml = read("../../wrangler.toml");
// Read as text: src/env.ts is Worker code (its types are not Node's).
const envSource = read("../../src/env.ts");
const constant = (name: string) => envSource.match(new RegExp(`export const ${name} = "([0-9a-f]+)"`))?.[1];
/** The `[section]` blocks of the file, by header. */
const sections = new Map(
  toml.split(/^(?=\[)/m).map((block) => [block.slice(0, block.indexOf("\n")).trim(), block] as const),
);
const value = (block: string | undefined, name: string) =>
  block?.match(new RegExp(`^${name}\\s*=\\s*"([^"]*)"`, "m"))?.[1];

describe("wrangler.toml", () => {
  it("gives development the public wallet keys that parseConfig refuses in production", () => {
    const vars = sections.get("[vars]");
    expect(value(vars, "WALLET_KEY")).toBe(constant("DEVELOPMENT_WALLET_KEY"));
    expect(value(vars, "PG_KEY")).toBe(constant("DEVELOPMENT_PG_KEY"));
    expect(constant("DEVELOPMENT_WALLET_KEY")).toHaveLength(64);
  });

  it("keeps wallet keys out of the deployed environments' vars (they are secrets there)", () => {
    for (const name of ["[env.production.vars]", "[env.staging.vars]"]) {
      const block = sections.get(name);
      expect(block, name).toBeDefined();
      expect(value(block, "WALLET_KEY"), name).toBeUndefined();
      expect(value(block, "PG_KEY"), name).toBeUndefined();
      expect(value(block, "DEVELOPER_DEPOSIT_USD"), name).toBe("250");
    }
  });
});
