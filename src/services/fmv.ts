/**
 * @module The TAO/USD price ("fair market value", upstream-flows §4.2): from Redis, else
 * the newest stored price, refreshed from a primary source (Kraken's Ticker shape) with a
 * fallback (CoinGecko's simple-price shape) once it is `FMV_REFRESH_SECONDS` old. Every
 * fetched price is appended to `fmv_history` and cached in Redis (`fmv:{ticker}`).
 *
 * The staleness limit is the point: no price older than `FMV_MAX_AGE_SECONDS` is ever
 * returned (upstream fell back to the newest stored price of any age). When the sources
 * are down for longer than that there is no price: payments wait rather than be credited
 * at a stale rate, and the price endpoints answer 503.
 */
import { desc, eq } from "drizzle-orm";
import { fmvHistory } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";
import type { Redis } from "../lib/redis.ts";

export const TAO = "tao";
const SOURCE_TIMEOUT_MS = 5_000;

export interface TaoPrice {
  usd: number;
  /** `kraken`, `coingecko`, or where a stored price came from. */
  source: string;
  fetchedAt: Date;
}

export interface FmvConfig {
  FMV_PRIMARY_URL: string;
  FMV_FALLBACK_URL: string;
  FMV_MAX_AGE_SECONDS: number;
  FMV_REFRESH_SECONDS: number;
}

export interface FmvDeps {
  db: AnyDatabase;
  redis: Redis;
  config: FmvConfig;
  now(): Date;
}

const positive = (value: unknown): number | null => {
  const n = typeof value === "string" ? Number(value) : value;
  return typeof n === "number" && Number.isFinite(n) && n > 0 ? n : null;
};

/** Kraken `GET /0/public/Ticker?pair=TAOUSD`: the last trade, `result.<pair>.c[0]`. */
export function parseKraken(body: unknown): number | null {
  const { error, result } = (body ?? {}) as { error?: unknown[]; result?: Record<string, { c?: unknown[] }> };
  if ((error?.length ?? 0) > 0 || !result) return null;
  const pair = Object.values(result)[0];
  return positive(pair?.c?.[0]);
}

/** CoinGecko `GET /api/v3/simple/price?ids=bittensor&vs_currencies=usd`. */
export function parseCoinGecko(body: unknown): number | null {
  return positive((body as { bittensor?: { usd?: unknown } } | null)?.bittensor?.usd);
}

async function fetchSource(url: string, parse: (body: unknown) => number | null): Promise<number | null> {
  try {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(SOURCE_TIMEOUT_MS),
      headers: { accept: "application/json" },
    });
    if (!res.ok) {
      await res.body?.cancel();
      return null;
    }
    return parse(await res.json());
  } catch {
    // Unreachable, timed out or not JSON: the other source, or the cached price, decides.
    return null;
  }
}

const cacheKey = (ticker: string) => `fmv:${ticker}`;

async function readCache(redis: Redis, ticker: string): Promise<TaoPrice | null> {
  try {
    const cached = await redis.get<{ usd: number; source: string; fetched_at: string }>(cacheKey(ticker));
    return cached ? { usd: cached.usd, source: cached.source, fetchedAt: new Date(cached.fetched_at) } : null;
  } catch {
    // Redis is only a cache here: Postgres holds every price.
    return null;
  }
}

async function writeCache(deps: FmvDeps, ticker: string, price: TaoPrice): Promise<void> {
  const value = { usd: price.usd, source: price.source, fetched_at: price.fetchedAt.toISOString() };
  await deps.redis.set(cacheKey(ticker), value, { ex: deps.config.FMV_MAX_AGE_SECONDS }).catch(() => {});
}

async function newestStored(db: AnyDatabase, ticker: string): Promise<TaoPrice | null> {
  const [row] = await db
    .select()
    .from(fmvHistory)
    .where(eq(fmvHistory.ticker, ticker))
    .orderBy(desc(fmvHistory.fetchedAt))
    .limit(1);
  return row ? { usd: row.price, source: row.source, fetchedAt: row.fetchedAt } : null;
}

/**
 * The price of `ticker` (TAO unless a test names another), never older than
 * `FMV_MAX_AGE_SECONDS`; null when none that fresh can be had.
 */
export async function currentPrice(deps: FmvDeps, ticker = TAO): Promise<TaoPrice | null> {
  const now = deps.now().getTime();
  const age = (p: TaoPrice) => (now - p.fetchedAt.getTime()) / 1000;
  const { config } = deps;
  const cached = await readCache(deps.redis, ticker);
  if (cached && age(cached) < config.FMV_REFRESH_SECONDS) return cached;
  const stored = await newestStored(deps.db, ticker);
  const known = [cached, stored].filter((p): p is TaoPrice => p !== null).sort((a, b) => age(a) - age(b))[0];
  if (known && age(known) < config.FMV_REFRESH_SECONDS) {
    await writeCache(deps, ticker, known);
    return known;
  }
  const primary = await fetchSource(config.FMV_PRIMARY_URL, parseKraken);
  const usd = primary ?? (await fetchSource(config.FMV_FALLBACK_URL, parseCoinGecko));
  if (usd !== null) {
    const fresh = { usd, source: primary !== null ? "kraken" : "coingecko", fetchedAt: new Date(now) };
    await deps.db
      .insert(fmvHistory)
      .values({ ticker, source: fresh.source, price: usd, fetchedAt: fresh.fetchedAt })
      .onConflictDoNothing();
    await writeCache(deps, ticker, fresh);
    return fresh;
  }
  return known && age(known) <= config.FMV_MAX_AGE_SECONDS ? known : null;
}
