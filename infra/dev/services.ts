/**
 * @module Starts the services the Worker needs outside workerd, for `npm start` and tests.
 *
 * - Postgres: the server at `databaseUrl` as is, a scratch database created on the server
 *   at `scratchFrom` (tests), or embedded PGlite; then migrations; then the ws proxy the
 *   Neon driver connects through.
 * - Redis: the Upstash REST adapter over the real server at `redisUrl`, or over the
 *   embedded twin.
 * - The dev chain (`CHAIN_MODE=file`) over the metagraph document at `metagraphFile`,
 *   created from infra/dev/metagraph.json when missing, with the dev validator's seed.
 * - The dev TAO price feed, standing in for the exchanges the Worker prices TAO with.
 *
 * The result is exactly the set of variables the Worker reads (`workerVars`).
 */

import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type DevChain, startDevChain } from "./dev-chain.ts";
import { applyMigrations, createScratchDatabase, type RunningPostgres, startEmbeddedPostgres } from "./postgres.ts";
import { type PriceFeed, startPriceFeed } from "./price-feed.ts";
import { memoryBackend, redisBackend, startUpstashAdapter, type UpstashAdapter } from "./upstash-adapter.ts";
import { startWsProxy, type WsProxy } from "./ws-proxy.ts";

export interface LocalServicesOptions {
  /** Use this Postgres database as it is (migrations are applied to it). */
  databaseUrl?: string;
  /** Create a scratch database on this server instead (dropped on stop). */
  scratchFrom?: string;
  /** Where embedded PGlite keeps its files; null keeps them in memory. */
  pgliteDir?: string | null;
  /** A real Redis; without it the adapter serves the embedded twin. */
  redisUrl?: string;
  /** The dev chain's metagraph document (created from infra/dev/metagraph.json if missing). */
  metagraphFile: string;
  /** Called when the dev chain's metagraph changes through its API. */
  onChainChange?: () => Promise<string>;
  /** Fixed ports (0 or absent: any free port). */
  ports?: { postgres?: number; wsProxy?: number; redisRest?: number; devChain?: number; priceFeed?: number };
  log?: (message: string) => void;
}

/** The seed document of the dev metagraph. */
export const DEV_METAGRAPH_SEED = fileURLToPath(new URL("metagraph.json", import.meta.url));
/**
 * The dev validator's hotkey seed: a well-known value, never a secret. Its hotkey
 * (5Gn2D1rR…) is uid 0 of netuid 64 in infra/dev/metagraph.json.
 */
export const DEV_VALIDATOR_SEED = `0x${"de".repeat(32)}`;

export interface LocalServices {
  postgres: { kind: "external" | "scratch" | "pglite"; url: string };
  redis: { kind: "redis" | "memory"; restUrl: string; token: string };
  wsProxy: string;
  chain: { url: string; metagraphFile: string };
  /** The dev TAO price feed (infra/dev/price-feed.ts). */
  priceFeed: string;
  /** The Worker's variables that point it at these services. */
  workerVars: Record<string, string>;
  stop(): Promise<void>;
}

export async function startLocalServices(options: LocalServicesOptions): Promise<LocalServices> {
  const log = options.log ?? (() => {});
  const stack: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const close of stack.reverse()) await close().catch(() => {});
  };
  try {
    let postgres: RunningPostgres;
    let kind: LocalServices["postgres"]["kind"];
    if (options.scratchFrom) {
      postgres = await createScratchDatabase(options.scratchFrom);
      kind = "scratch";
    } else if (options.databaseUrl) {
      postgres = { url: options.databaseUrl, close: async () => {} };
      kind = "external";
    } else {
      postgres = await startEmbeddedPostgres({ dataDir: options.pgliteDir ?? null, port: options.ports?.postgres });
      kind = "pglite";
    }
    stack.push(() => postgres.close());
    log(`postgres: ${kind} ${redact(postgres.url)}`);

    await applyMigrations(postgres.url);
    log("postgres: migrations applied");

    const proxy: WsProxy = await startWsProxy({ port: options.ports?.wsProxy });
    stack.push(() => proxy.close());

    const token = randomBytes(16).toString("hex");
    const adapter: UpstashAdapter = await startUpstashAdapter({
      backend: options.redisUrl ? redisBackend(options.redisUrl) : memoryBackend(),
      token,
      port: options.ports?.redisRest,
    });
    stack.push(() => adapter.close());
    log(`redis: ${adapter.backend.kind} via Upstash REST adapter at ${adapter.url}`);

    if (!existsSync(options.metagraphFile)) {
      mkdirSync(path.dirname(options.metagraphFile), { recursive: true });
      copyFileSync(DEV_METAGRAPH_SEED, options.metagraphFile);
    }
    const chain: DevChain = await startDevChain({
      file: options.metagraphFile,
      port: options.ports?.devChain,
      onChange: options.onChainChange,
    });
    stack.push(() => chain.close());
    log(`chain: dev chain at ${chain.url} over ${options.metagraphFile}`);

    const feed: PriceFeed = await startPriceFeed({ port: options.ports?.priceFeed });
    stack.push(() => feed.close());
    log(`prices: dev TAO price feed at ${feed.url}`);

    return {
      postgres: { kind, url: postgres.url },
      redis: { kind: adapter.backend.kind, restUrl: adapter.url, token },
      wsProxy: proxy.address,
      chain: { url: chain.url, metagraphFile: options.metagraphFile },
      priceFeed: feed.url,
      workerVars: {
        DATABASE_URL: postgres.url,
        LOCAL_WSPROXY: proxy.address,
        UPSTASH_REDIS_REST_URL: adapter.url,
        UPSTASH_REDIS_REST_TOKEN: token,
        CHAIN_FILE_URL: chain.url,
        VALIDATOR_HOTKEY_SEED: DEV_VALIDATOR_SEED,
        FMV_PRIMARY_URL: feed.primaryUrl,
        FMV_FALLBACK_URL: feed.fallbackUrl,
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Hides a password in a connection URL for logs. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, "//$1:***@");
}
