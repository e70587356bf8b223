import { describe, expect, it } from "vitest";
import { ConfigError, configFor, DEVELOPMENT_PG_KEY, DEVELOPMENT_WALLET_KEY, parseConfig } from "../../src/env.ts";
import { validEnv } from "./fixtures.ts";

const valid = validEnv;

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

  it("needs the S3 endpoint, bucket and keys when the registry stores in R2", () => {
    expect(parseConfig(valid)).toMatchObject({ REGISTRY_STORAGE: "filesystem", BUILD_TIMEOUT_S: 3600 });
    expect(() => parseConfig({ ...valid, REGISTRY_STORAGE: "r2" })).toThrow(
      /REGISTRY_S3_ENDPOINT.*REGISTRY_S3_BUCKET.*REGISTRY_S3_ACCESS_KEY_ID.*REGISTRY_S3_SECRET_ACCESS_KEY/,
    );
    expect(() => parseConfig({ ...valid, REGISTRY_S3_ROOT: "/registry" })).toThrow(/REGISTRY_S3_ROOT/);
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

  it("keeps loopback miners and the CPU-sized proof profiles out of production", () => {
    expect(parseConfig(valid)).toMatchObject({
      ALLOW_LOOPBACK_MINERS: false,
      GPU_PROOF_PROFILE: "full",
      INSTANCE_FAILURE_LIMIT: 7,
    });
    expect(parseConfig({ ...valid, ALLOW_LOOPBACK_MINERS: "true" }).ALLOW_LOOPBACK_MINERS).toBe(true);
    const production = {
      ...valid,
      ENVIRONMENT: "production",
      CHAIN_MODE: "rpc",
      SUBTENSOR_URL: "https://node.example",
    };
    expect(() => parseConfig({ ...production, ALLOW_LOOPBACK_MINERS: "true" })).toThrow(/ALLOW_LOOPBACK_MINERS/);
    expect(() => parseConfig({ ...production, GPU_PROOF_PROFILE: "tiny" })).toThrow(/GPU_PROOF_PROFILE: must be full/);
    expect(() => parseConfig({ ...valid, INSTANCE_FAILURE_LIMIT: "0" })).toThrow(/INSTANCE_FAILURE_LIMIT/);
  });

  it("parses once per env object and remembers a failure", () => {
    const env = { ...valid };
    expect(configFor(env)).toBe(configFor(env));
    const bad = { ...valid, UPSTASH_REDIS_REST_TOKEN: "" };
    expect(() => configFor(bad)).toThrow(ConfigError);
    expect(() => configFor(bad)).toThrow(ConfigError);
  });

  it("checks the wallet keys are 32 bytes of hex", () => {
    expect(() => parseConfig({ ...valid, WALLET_KEY: "abcd" })).toThrow(/WALLET_KEY/);
    expect(() => parseConfig({ ...valid, PG_KEY: "zz".repeat(32) })).toThrow(/PG_KEY/);
    expect(() => parseConfig({ ...valid, PG_KEY: undefined })).toThrow(/PG_KEY/);
  });

  it("refuses the public development wallet keys in production and staging only", () => {
    // A deployable chain configuration, so the only problems left are the keys.
    const dev = {
      ...valid,
      CHAIN_MODE: "rpc",
      SUBTENSOR_URL: "https://subtensor.example",
      WALLET_KEY: DEVELOPMENT_WALLET_KEY,
      PG_KEY: DEVELOPMENT_PG_KEY,
    };
    expect(parseConfig(dev).WALLET_KEY).toBe(DEVELOPMENT_WALLET_KEY);
    for (const ENVIRONMENT of ["production", "staging"]) {
      const error = (() => {
        try {
          parseConfig({ ...dev, ENVIRONMENT });
        } catch (e) {
          return e as ConfigError;
        }
        throw new Error("expected a ConfigError");
      })();
      expect(error.issues.map((i) => i.split(":")[0]).sort()).toEqual(["PG_KEY", "WALLET_KEY"]);
    }
    expect(() => parseConfig({ ...dev, ENVIRONMENT: "production", PG_KEY: "33".repeat(32) })).toThrow(/WALLET_KEY/);
  });

  it("parses the developer deposit and the hotkey allow-lists", () => {
    const alice = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    const config = parseConfig({ ...valid, DEVELOPER_DEPOSIT_USD: "0", VALIDATOR_HOTKEYS: ` ${alice} ,, ` });
    expect(config.DEVELOPER_DEPOSIT_USD).toBe(0);
    expect(config.VALIDATOR_HOTKEYS).toEqual([alice]);
    expect(config.SUBNET_OWNER_HOTKEYS).toEqual([]);
    expect(parseConfig(valid).DEVELOPER_DEPOSIT_USD).toBe(250);
    expect(() => parseConfig({ ...valid, DEVELOPER_DEPOSIT_USD: "-1" })).toThrow(/DEVELOPER_DEPOSIT_USD/);
    expect(() => parseConfig({ ...valid, SUBNET_OWNER_HOTKEYS: "nope" })).toThrow(/SUBNET_OWNER_HOTKEYS/);
  });
});
