/**
 * @module The Worker's configuration: every binding and variable, validated once per
 * isolate with zod. Handlers never read `env` directly; they get the parsed `Config`.
 *
 * An invalid configuration is an operator error, not a client one: every request then
 * answers 500 `config_invalid` naming the variables at fault (never their values), and
 * the log carries the same list.
 */
import { z } from "zod";
import type { BuildLog } from "../durable-objects/build-log.ts";
import type { Metering } from "../durable-objects/metering.ts";
import type { MinerHub } from "../durable-objects/miner-hub.ts";
import type { Verifier } from "../durable-objects/verifier.ts";
import { isSs58Address } from "./lib/sr25519.ts";

/** A hostname such as `chutes.ai` or `localhost`. */
const hostname = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, {
    message: "must be a hostname such as chutes.ai or localhost",
  });

/** 32 bytes as 64 hex digits (AES-256 keys and the like). */
const key256 = (name: string) =>
  z.string().regex(/^[0-9a-fA-F]{64}$/, { message: `${name} must be 32 bytes written as 64 hex digits` });

/** A comma-separated list of ss58 addresses (empty: none). */
const ss58List = z
  .string()
  .default("")
  .transform((text) =>
    text
      .split(",")
      .map((part) => part.trim())
      .filter(Boolean),
  )
  .refine((list) => list.every(isSs58Address), { message: "must be a comma-separated list of ss58 addresses" });

const binding = <T>(name: string, probe: string) =>
  z.custom<T>((value) => typeof value === "object" && value !== null && probe in value, {
    message: `${name} binding is missing`,
  });

export const envSchema = z.object({
  ENVIRONMENT: z.enum(["development", "test", "staging", "production"]).default("development"),
  /** Hosts are `{api,llm,socket,ws,events,registry,<slug>}.{BASE_DOMAIN}`. */
  BASE_DOMAIN: hostname.default("localhost"),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, { message: "must be a postgres:// connection string" }),
  /**
   * Local only: `host:port/path` of the ws proxy in infra/dev that stands in for Neon's.
   * Unset in production, where the driver talks to Neon directly.
   */
  LOCAL_WSPROXY: z
    .string()
    .regex(/^[^/\s]+:\d+(\/\S*)?$/, { message: "must look like 127.0.0.1:5433/v1" })
    .optional(),
  UPSTASH_REDIS_REST_URL: z.url({ protocol: /^https?$/ }),
  UPSTASH_REDIS_REST_TOKEN: z.string().min(1),
  /**
   * AES-256-GCM key (hex) for the first encryption layer of wallet mnemonics. A secret in
   * production; losing it loses every generated wallet.
   */
  WALLET_KEY: key256("WALLET_KEY"),
  /** pgcrypto passphrase (hex) for the second layer, applied inside Postgres. A secret. */
  PG_KEY: key256("PG_KEY"),
  /** USD a developer deposits to get the developer permission; 0 turns the gate off. */
  DEVELOPER_DEPOSIT_USD: z.coerce.number().min(0).max(1_000_000).default(250),
  /** Hotkeys users may link as validators (`/users/link_validator`). */
  VALIDATOR_HOTKEYS: ss58List,
  /** Hotkeys users may link as subnet owners (`/users/link_subnet_owner`). */
  SUBNET_OWNER_HOTKEYS: ss58List,
  /**
   * `rpc`: a subtensor node at SUBTENSOR_URL (required in staging and production);
   * `file`: the dev chain `npm start` serves at CHAIN_FILE_URL (development and tests only).
   */
  CHAIN_MODE: z.enum(["rpc", "file"]).default("file"),
  /** http(s) JSON-RPC endpoint of a subtensor node (HTTP, not WebSocket: see src/chain/rpc.ts). */
  SUBTENSOR_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** Local only: base URL of infra/dev/dev-chain.ts. */
  CHAIN_FILE_URL: z.url({ protocol: /^https?$/ }).optional(),
  /**
   * The subnet whose metagraph is mirrored and weighted, and whose registered hotkeys
   * (`metagraph_nodes.netuid`) count as miners.
   */
  NETUID: z.coerce.number().int().min(0).max(65_535).default(64),
  /** Secret: 32-byte hex seed of the validator hotkey (sr25519) that signs weights. */
  VALIDATOR_HOTKEY_SEED: z
    .string()
    .regex(/^(0x)?[0-9a-fA-F]{64}$/, { message: "must be a 32-byte hex seed" })
    .optional(),
  /**
   * The chutes SDK version every image build pins (`RUN pip install --upgrade chutes==…`
   * is appended to uploaded Dockerfiles) and records as the image's `chutes_version`,
   * which later selects the miner protocol.
   */
  CHUTES_VERSION: z
    .string()
    .regex(/^\d+\.\d+\.\d+$/, { message: "must be a version such as 0.2.14" })
    .default("0.2.14"),
  /**
   * Largest build context (`POST /images/`, the whole multipart body) in bytes. The body is
   * held in memory once to hash it for the signature and parse it, and an isolate has
   * 128 MB, so the ceiling is 64 MiB (Workers also refuse bodies over 100 MB).
   */
  IMAGE_CONTEXT_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .max(64 * 1024 * 1024)
    .default(32 * 1024 * 1024),
  /**
   * How long one build attempt may take once a builder claims it (the builder kills
   * buildah at this limit too); past it the image is `error`.
   */
  BUILD_TIMEOUT_S: z.coerce
    .number()
    .int()
    .min(60)
    .max(6 * 3600)
    .default(3600),
  /** A builder's claim or heartbeat holds its job this long; a dead builder's job comes back after it. */
  BUILD_LEASE_MS: z.coerce.number().int().min(5_000).max(600_000).default(60_000),
  /** Claims of one build (a lapsed lease counts one); after the last, a lapse fails the image. */
  BUILD_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(2),
  /**
   * The CNCF Distribution origin `registry.{domain}` proxies to (docker-registry: loopback
   * locally, a private address in production; never public: the Worker is its only gate).
   * Unset: the registry front answers 503.
   */
  REGISTRY_ORIGIN_URL: z.url({ protocol: /^https?$/ }).optional(),
  /**
   * Where the origin stores blobs: `filesystem` (blob downloads are proxied) or `r2`
   * (Distribution's S3 driver on R2: blob downloads are redirected to presigned R2 URLs).
   */
  REGISTRY_STORAGE: z.enum(["filesystem", "r2"]).default("filesystem"),
  /** r2: the S3 endpoint of the registry's bucket, e.g. https://<account>.r2.cloudflarestorage.com. */
  REGISTRY_S3_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  /** r2: the bucket Distribution stores in. */
  REGISTRY_S3_BUCKET: z.string().min(3).max(63).optional(),
  /** r2: Distribution's `rootdirectory` inside the bucket (no leading or trailing slash; empty: none). */
  REGISTRY_S3_ROOT: z
    .string()
    .regex(/^(?:[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*)?$/, {
      message: "must be a key prefix without slashes at the ends",
    })
    .default(""),
  /** r2 (secrets): an R2 API token with read access to that bucket, for presigning. */
  REGISTRY_S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  REGISTRY_S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  /** r2: lifetime of a presigned blob URL. */
  REGISTRY_PRESIGN_TTL_S: z.coerce.number().int().min(10).max(3600).default(300),
  /**
   * Seconds a miner's metagraph registration, once found, is trusted by the registry front
   * without asking Postgres again (0: ask on every request). Signatures are still verified
   * and replay-checked on every request.
   */
  REGISTRY_MINER_CACHE_S: z.coerce.number().int().min(0).max(300).default(30),
  /**
   * TAO/USD sources: the primary answers in Kraken's Ticker shape, the fallback in
   * CoinGecko's simple-price shape (src/services/fmv.ts).
   */
  FMV_PRIMARY_URL: z.url({ protocol: /^https?$/ }).default("https://api.kraken.com/0/public/Ticker?pair=TAOUSD"),
  FMV_FALLBACK_URL: z
    .url({ protocol: /^https?$/ })
    .default("https://api.coingecko.com/api/v3/simple/price?ids=bittensor&vs_currencies=usd"),
  /** A price older than this is never used (payments wait instead). */
  FMV_MAX_AGE_SECONDS: z.coerce.number().int().min(60).max(86_400).default(3600),
  /** A price older than this is refreshed from the sources when next asked for. */
  FMV_REFRESH_SECONDS: z.coerce.number().int().min(10).max(86_400).default(300),
  /** Finalised blocks the payment watcher processes per run (every minute) at most. */
  PAYMENT_BLOCKS_PER_RUN: z.coerce.number().int().min(1).max(1000).default(60),
  /** Upstream's first-payment bonus (USD once, when credits reach the threshold); 0 turns it off, as HEAD did. */
  FIRST_PAYMENT_BONUS_USD: z.coerce.number().min(0).max(10_000).default(0),
  FIRST_PAYMENT_BONUS_THRESHOLD_USD: z.coerce.number().min(0).max(1_000_000).default(100),
  /**
   * Miner hosts (node verification servers, instances) on loopback are accepted: local dev
   * and tests only (refused in staging and production). Private, link-local and other
   * non-public addresses are refused either way.
   */
  ALLOW_LOOPBACK_MINERS: z
    .enum(["true", "false"])
    .default("false")
    .transform((value) => value === "true"),
  /** DNS-over-HTTPS endpoint (JSON API) that resolves miner host names to check they are public. */
  DOH_URL: z.url({ protocol: /^https$/ }).default("https://cloudflare-dns.com/dns-query"),
  /**
   * The GPU-proof profile nodes and instances are verified with (docs/gpu-proof.md §3):
   * `full` in production; `tiny` for local dev and tests (the CPU agent proves it in ~0.3 s).
   */
  GPU_PROOF_PROFILE: z.enum(["tiny", "small", "full"]).default("full"),
  /** Consecutive failed calls (invocations or health probes) after which an instance is removed. */
  INSTANCE_FAILURE_LIMIT: z.coerce.number().int().min(1).max(1000).default(7),
  /** Time limit of one validator → miner call that is not a proof (pings, exchanges wait longer). */
  MINER_CALL_TIMEOUT_MS: z.coerce.number().int().min(1000).max(120_000).default(12_000),
  VERIFIER: binding<DurableObjectNamespace<Verifier>>("VERIFIER", "idFromName"),
  /** Invocations one instance serves at once; the router answers 429 `at_capacity` past it on every instance. */
  INSTANCE_MAX_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(32),
  /** Invocations per user and chute per window (`unlimited` users are exempt). */
  RATE_LIMIT_COUNT: z.coerce.number().int().min(1).max(1_000_000).default(60),
  RATE_LIMIT_WINDOW_S: z.coerce.number().int().min(1).max(3600).default(60),
  /** Until the instance's response headers (connect and first byte: fetch() exposes no separate connect phase). */
  INVOKE_FIRST_BYTE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(60_000),
  /** Until the instance's last byte. */
  INVOKE_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(600_000),
  /** Streamed cords: how long the gateway waits for an instance before sending SSE keepalive comments, and their interval. */
  INVOKE_KEEPALIVE_MS: z.coerce.number().int().min(50).max(60_000).default(10_000),
  /** Instances tried per request (retries only before the first byte reaches the client). */
  INVOKE_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(9).default(3),
  /** Chute lookups (slug, id, model) are cached per isolate this long. */
  GATEWAY_CACHE_TTL_MS: z.coerce.number().int().min(0).max(300_000).default(5_000),
  /** Metering batches are flushed to Postgres this long after their first record. */
  METERING_FLUSH_MS: z.coerce.number().int().min(10).max(600_000).default(1_000),
  BUCKET: binding<R2Bucket>("BUCKET", "put"),
  MINER_HUB: binding<DurableObjectNamespace<MinerHub>>("MINER_HUB", "idFromName"),
  CHUTE_ROUTER: binding<DurableObjectNamespace>("CHUTE_ROUTER", "idFromName"),
  EVENTS_HUB: binding<DurableObjectNamespace>("EVENTS_HUB", "idFromName"),
  BUILD_LOGS: binding<DurableObjectNamespace<BuildLog>>("BUILD_LOGS", "idFromName"),
  METERING: binding<DurableObjectNamespace<Metering>>("METERING", "idFromName"),
});

export type Config = z.infer<typeof envSchema>;

/**
 * The development values of the wallet keys in wrangler.toml's top-level [vars]. They are
 * public, so a deployed environment that carries them has no secret at all.
 */
export const DEVELOPMENT_WALLET_KEY = "6465762d6f6e6c792d77616c6c65742d6b65792d6e6f742d612d736563726574";
export const DEVELOPMENT_PG_KEY = "6465762d6f6e6c792d70672d6b65792d69732d6e6f742d612d73656372657421";

export class ConfigError extends Error {
  readonly issues: string[];
  constructor(issues: string[]) {
    super(`invalid configuration: ${issues.join("; ")}`);
    this.issues = issues;
  }
}

/** Parses and checks `env`; throws `ConfigError` listing every problem. */
export function parseConfig(env: unknown): Config {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`));
  }
  const config = result.data;
  const issues: string[] = [];
  const deployed = config.ENVIRONMENT === "production" || config.ENVIRONMENT === "staging";
  if (deployed && config.LOCAL_WSPROXY) {
    issues.push("LOCAL_WSPROXY: is a local development setting and must not be set in production");
  }
  if (deployed && config.WALLET_KEY.toLowerCase() === DEVELOPMENT_WALLET_KEY) {
    issues.push("WALLET_KEY: is the public development key; set a secret one (wrangler secret put WALLET_KEY)");
  }
  if (deployed && config.PG_KEY.toLowerCase() === DEVELOPMENT_PG_KEY) {
    issues.push("PG_KEY: is the public development key; set a secret one (wrangler secret put PG_KEY)");
  }
  if (deployed && config.ALLOW_LOOPBACK_MINERS) {
    issues.push("ALLOW_LOOPBACK_MINERS: is a local development setting and must be false in production");
  }
  if (deployed && config.GPU_PROOF_PROFILE !== "full") {
    issues.push("GPU_PROOF_PROFILE: must be full in production (tiny and small prove nothing about a GPU)");
  }
  if (deployed && config.CHAIN_MODE !== "rpc") {
    issues.push("CHAIN_MODE: must be rpc in production (file is the local dev chain)");
  }
  if (config.FMV_REFRESH_SECONDS > config.FMV_MAX_AGE_SECONDS) {
    issues.push("FMV_REFRESH_SECONDS: must not exceed FMV_MAX_AGE_SECONDS");
  }
  if (config.CHAIN_MODE === "rpc" && !config.SUBTENSOR_URL) {
    issues.push("SUBTENSOR_URL: is required when CHAIN_MODE is rpc");
  }
  if (config.REGISTRY_STORAGE === "r2") {
    for (const name of [
      "REGISTRY_S3_ENDPOINT",
      "REGISTRY_S3_BUCKET",
      "REGISTRY_S3_ACCESS_KEY_ID",
      "REGISTRY_S3_SECRET_ACCESS_KEY",
    ] as const) {
      if (!config[name]) issues.push(`${name}: is required when REGISTRY_STORAGE is r2`);
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return config;
}

// The env object of an isolate is the same object for every request, so the parse is
// done once per isolate; the WeakMap holds no I/O and dies with the isolate.
const parsed = new WeakMap<object, Config | ConfigError>();

/** `parseConfig`, memoised per env object (that is, once per isolate). */
export function configFor(env: object): Config {
  let cached = parsed.get(env);
  if (!cached) {
    try {
      cached = parseConfig(env);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      cached = error;
    }
    parsed.set(env, cached);
  }
  if (cached instanceof ConfigError) throw cached;
  return cached;
}
