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

  it("chooses the chain: the dev chain by default, a subtensor node in production", () => {
    expect(parseConfig(valid)).toMatchObject({ CHAIN_MODE: "file", NETUID: 64 });
    expect(parseConfig({ ...valid, NETUID: "12" }).NETUID).toBe(12);
    expect(() => parseConfig({ ...valid, NETUID: "70000" })).toThrow(/NETUID/);
    expect(() => parseConfig({ ...valid, CHAIN_MODE: "rpc" })).toThrow(/SUBTENSOR_URL: is required/);
    expect(() => parseConfig({ ...valid, ENVIRONMENT: "production" })).toThrow(/CHAIN_MODE: must be rpc/);
    const production = {
      ...valid,
      ENVIRONMENT: "production",
      CHAIN_MODE: "rpc",
      SUBTENSOR_URL: "https://node.example",
    };
    expect(parseConfig(production)).toMatchObject({ CHAIN_MODE: "rpc", SUBTENSOR_URL: "https://node.example" });
    expect(() => parseConfig({ ...production, VALIDATOR_HOTKEY_SEED: "0x1234" })).toThrow(/VALIDATOR_HOTKEY_SEED/);
    expect(parseConfig({ ...production, VALIDATOR_HOTKEY_SEED: "ab".repeat(32) }).VALIDATOR_HOTKEY_SEED).toBe(
      "ab".repeat(32),
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
