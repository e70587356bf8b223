import { describe, expect, it } from "vitest";
import { cronMatches, devCrons } from "../../infra/dev/cron.ts";
import { CRON_JOBS } from "../../src/cron.ts";
import wranglerToml from "../../wrangler.toml?raw";

describe("cron schedule", () => {
  it("declares every CRON_JOBS expression as a trigger of every environment, and nothing else", () => {
    const expected = Object.keys(CRON_JOBS).sort();
    expect(devCrons(wranglerToml).sort()).toEqual(expected);
    expect(devCrons(wranglerToml, "env.production.triggers").sort()).toEqual(expected);
    expect(devCrons(wranglerToml, "env.staging.triggers").sort()).toEqual(expected);
  });

  it("matches five-field expressions the way the platform fires them (UTC)", () => {
    const at = new Date("2026-03-02T14:30:00Z"); // a Monday
    expect(cronMatches("* * * * *", at)).toBe(true);
    expect(cronMatches("30 14 * * *", at)).toBe(true);
    expect(cronMatches("0 * * * *", at)).toBe(false);
    expect(cronMatches("*/15 * * * *", at)).toBe(true);
    expect(cronMatches("*/7 * * * *", at)).toBe(false);
    expect(cronMatches("0-29 * * * *", at)).toBe(false);
    expect(cronMatches("25-35 14 2 3 1", at)).toBe(true);
    expect(cronMatches("0,30 * * * 0", at)).toBe(false);
    expect(cronMatches("* * *", at)).toBe(false);
  });
});
