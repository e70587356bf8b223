import { describe, expect, it } from "vitest";
import { ConfigError, configFor, parseConfig } from "../../src/env.ts";

const namespace = { idFromName: () => ({}) };
const valid = {
  DATABASE_URL: "postgres://u:p@db.example:5432/app",
  UPSTASH_REDIS_REST_URL: "https://eu1.upstash.example",
  UPSTASH_REDIS_REST_TOKEN: "secret",
  BUCKET: { put: () => {} },
  MINER_HUB: namespace,
  CHUTE_ROUTER: namespace,
  EVENTS_HUB: namespace,
};

describe("configuration", () => {
  it("applies defaults to a minimal valid environment", () => {
    const config = parseConfig(valid);
    expect(config).toMatchObject({ ENVIRONMENT: "development", BASE_DOMAIN: "localhost", LOG_LEVEL: "info" });
  });

  it("normalises the base domain", () => {
    expect(parseConfig({ ...valid, BASE_DOMAIN: " Chutes.AI " }).BASE_DOMAIN).toBe("chutes.ai");
  });

  it("lists every problem at once, naming variables but not their values", () => {
    const error = (() => {
      try {
        parseConfig({ ...valid, DATABASE_URL: "mysql://nope", BASE_DOMAIN: "not a domain", BUCKET: undefined });
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error("expected a ConfigError");
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.issues.map((i) => i.split(":")[0]).sort()).toEqual(["BASE_DOMAIN", "BUCKET", "DATABASE_URL"]);
    expect(error.message).not.toContain("mysql://nope");
  });

  it("refuses the local ws proxy in production", () => {
    expect(() => parseConfig({ ...valid, ENVIRONMENT: "production", LOCAL_WSPROXY: "127.0.0.1:1/v1" })).toThrow(
      /LOCAL_WSPROXY/,
    );
  });

  it("parses once per env object and remembers a failure", () => {
    const env = { ...valid };
    expect(configFor(env)).toBe(configFor(env));
    const bad = { ...valid, UPSTASH_REDIS_REST_TOKEN: "" };
    expect(() => configFor(bad)).toThrow(ConfigError);
    expect(() => configFor(bad)).toThrow(ConfigError);
  });
});
