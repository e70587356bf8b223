/**
 * @module Admission before an invocation: the per-user-and-chute rate limit (a fixed-window
 * counter in Redis) and the balance gate (the balance cached in Redis; the authoritative
 * deduction happens in the metering flush, which refreshes that cache). Answers carry
 * `RateLimit-Policy` and `RateLimit` (IETF draft-ietf-httpapi-ratelimit-headers), and
 * `Retry-After` when refused.
 *
 * - **Warm calls ask Redis nothing** (`warmAdmission`): the isolate's ledger
 *   (src/services/admission-ledger.ts) holds the window count, the balance and the API key
 *   entry it last read, at most `LEDGER_FRESH_MS` old and re-read every `LEDGER_SYNC_MS`
 *   while in use; admitted calls are counted in the isolate and added to the Redis counter
 *   by the ledger's next sync.
 * - **Cold calls** (first in a window, or after a pause) read Redis in one pipeline
 *   (`readAdmission`), alongside authentication, and teach the ledger what they read.
 *
 * Counting in the isolate is exact for the calls it admits; across isolates a user may pass
 * the limit by what the other isolates admit within one sync (upstream's check-then-add had
 * a similar slack for concurrent calls).
 *
 * Redis keys: `gateway:rl:{user}:{chute}:{window index}` (counter, expires with its
 * window) and `gateway:balance:{user}` (USD balance as text, 60 s; 5 s when empty). Redis is
 * loss-tolerant here: a lost counter admits a little more, a lost balance is read again
 * from Postgres. When Redis cannot be asked at all, the gate fails open for the rate
 * limit and reads the balance from Postgres (money is never lost: billing is in Postgres).
 */
import { eq } from "drizzle-orm";
import { balances } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";
import { ApiError } from "../lib/errors.ts";
import { hasPermission } from "../lib/permissions.ts";
import type { Redis } from "../lib/redis.ts";
import { type AdmissionLedger, isolateLedger } from "./admission-ledger.ts";
import { type ApiKeyCacheEntry, apiKeyCacheKey } from "./api-keys.ts";

export const BALANCE_CACHE_TTL_S = 60;
export const EMPTY_BALANCE_CACHE_TTL_S = 5;
const balanceKey = (userId: string) => `gateway:balance:${userId}`;

export interface AdmissionInput {
  userId: string;
  chuteId: string;
  /** Exempt from the rate limit (`unlimited`). */
  unlimited: boolean;
  /** No balance needed (`free_account` user, or a chute with discount 1). */
  free: boolean;
  limit: number;
  windowSeconds: number;
  nowMs: number;
}

export interface Admission {
  /** Response headers describing the caller's quota (empty for unlimited callers). */
  headers: Record<string, string>;
}

/** What admission reads from Redis: the window's count so far and the cached balance. */
export interface AdmissionReads {
  count: number | null;
  balance: string | null;
  /** The API key's cached lookup, when its id was given (undefined when Redis failed). */
  apiKey?: { apiKeyId: string; entry: ApiKeyCacheEntry | null };
}

const windowOf = (nowMs: number, windowSeconds: number) => Math.floor(nowMs / 1000 / windowSeconds);
const counterKey = (userId: string, chuteId: string, window: number) => `gateway:rl:${userId}:${chuteId}:${window}`;

/** Whose admission facts to look up: a caller on a chute now, and the API key it presents. */
export interface AdmissionQuery {
  userId: string;
  chuteId: string;
  windowSeconds: number;
  nowMs: number;
  apiKeyId?: string;
}

/**
 * The Redis reads of admission, in one pipeline (what the ledger lacks). Read-only, so the
 * gateway may run it alongside authentication (with the user id an API key carries): a
 * forged key can read nothing and count nothing. Null fields when Redis cannot be asked.
 */
export async function readAdmission(
  redis: Redis,
  query: AdmissionQuery,
  ledger: AdmissionLedger = isolateLedger,
): Promise<AdmissionReads> {
  const { userId, chuteId, windowSeconds, nowMs, apiKeyId } = query;
  const counter = counterKey(userId, chuteId, windowOf(nowMs, windowSeconds));
  try {
    const pipe = redis.pipeline().get<string | number>(counter).get<string | number>(balanceKey(userId));
    if (apiKeyId) pipe.get<ApiKeyCacheEntry>(apiKeyCacheKey(apiKeyId));
    const [count, balance, entry] =
      await pipe.exec<[string | number | null, string | number | null, ApiKeyCacheEntry | null]>();
    const total = count === null ? 0 : Number(count);
    const reads: AdmissionReads = {
      count: total,
      balance: balance === null ? null : String(balance),
      apiKey: apiKeyId ? { apiKeyId, entry: entry ?? null } : undefined,
    };
    ledger.learnCount(counter, total, windowSeconds + 1, nowMs);
    ledger.remember(balanceKey(userId), reads.balance, nowMs);
    if (apiKeyId) ledger.remember(apiKeyCacheKey(apiKeyId), reads.apiKey?.entry, nowMs);
    return reads;
  } catch {
    return { count: null, balance: null };
  }
}

/**
 * Admission's facts from the isolate's ledger, or null when one is missing or stale (then
 * `readAdmission`). With an API key, its cached entry is needed too, and says whether the
 * user is `unlimited` (no count needed) or `free_account` (no balance needed); without
 * one, `exempt` must say so.
 */
export function warmAdmission(
  ledger: AdmissionLedger,
  query: AdmissionQuery & { chuteFree: boolean; exempt?: { unlimited: boolean; free: boolean } },
): AdmissionReads | null {
  const { userId, chuteId, windowSeconds, nowMs, apiKeyId } = query;
  let exempt = query.exempt;
  let apiKey: AdmissionReads["apiKey"];
  if (apiKeyId) {
    const entry = ledger.value<ApiKeyCacheEntry>(apiKeyCacheKey(apiKeyId), nowMs);
    if (!entry) return null;
    apiKey = { apiKeyId, entry };
    // A deleted key: authentication refuses it, nothing else is needed.
    if ("deleted" in entry) return { count: 0, balance: null, apiKey };
    const permissions = entry.user.permissionsBitmask;
    exempt ??= { unlimited: hasPermission(permissions, "unlimited"), free: hasPermission(permissions, "free_account") };
  }
  if (!exempt) return null;
  let count = 0;
  if (!exempt.unlimited) {
    const known = ledger.freshCount(counterKey(userId, chuteId, windowOf(nowMs, windowSeconds)), nowMs);
    if (known === undefined) return null;
    count = known;
  }
  let balance: string | null = null;
  if (!exempt.free && !query.chuteFree) {
    const cached = ledger.value<string | number>(balanceKey(userId), nowMs);
    if (cached === undefined) return null;
    balance = String(cached);
  }
  return { count, balance, apiKey };
}

/**
 * Admits the call or throws 429 `rate_limited` / 402 `payment_required`. An admitted call
 * is counted in the ledger at once (the count it was checked against includes every call
 * this isolate admitted before it) and in Redis by the ledger's next sync, which `defer`
 * holds the request open for.
 */
export async function admitInvocation(
  deps: { redis: Redis; db: AnyDatabase },
  input: AdmissionInput,
  reads: AdmissionReads | Promise<AdmissionReads> | undefined,
  defer: (work: Promise<unknown>) => void,
  ledger: AdmissionLedger = isolateLedger,
): Promise<Admission> {
  const window = windowOf(input.nowMs, input.windowSeconds);
  const counter = counterKey(input.userId, input.chuteId, window);
  const resetIn = Math.max(1, (window + 1) * input.windowSeconds - Math.floor(input.nowMs / 1000));
  const query = {
    userId: input.userId,
    chuteId: input.chuteId,
    windowSeconds: input.windowSeconds,
    nowMs: input.nowMs,
  };
  const got =
    (await reads) ??
    warmAdmission(ledger, { ...query, chuteFree: false, exempt: input }) ??
    (await readAdmission(deps.redis, query, ledger));
  try {
    const headers: Record<string, string> = {};
    if (!input.unlimited) {
      // What the ledger knows now includes calls admitted since `got` was read.
      const count = ledger.count(counter) ?? got.count;
      const used = (count ?? 0) + 1;
      headers["ratelimit-policy"] = `"invocations";q=${input.limit};w=${input.windowSeconds}`;
      headers.ratelimit = `"invocations";r=${Math.max(0, input.limit - used)};t=${resetIn}`;
      if (count !== null && used > input.limit) {
        throw new ApiError(
          "rate_limited",
          `Rate limit reached: ${input.limit} invocations of this chute per ${input.windowSeconds} s; retry in ${resetIn} s.`,
          { headers: { ...headers, "retry-after": String(resetIn) } },
        );
      }
    }
    if (!input.free) {
      let balance = got.balance;
      if (balance === null) {
        const [row] = await deps.db
          .select({ balance: balances.balance })
          .from(balances)
          .where(eq(balances.userId, input.userId));
        balance = row?.balance ?? "0";
        ledger.remember(balanceKey(input.userId), balance, Date.now());
        // An empty balance is cached briefly, so a top-up is seen within seconds.
        const ttl = Number(balance) > 0 ? BALANCE_CACHE_TTL_S : EMPTY_BALANCE_CACHE_TTL_S;
        defer(deps.redis.set(balanceKey(input.userId), balance, { ex: ttl }));
      }
      if (!(Number(balance) > 0)) {
        throw new ApiError(
          "payment_required",
          `Your account balance is $${Number(balance).toFixed(4)}: top up your balance (send TAO to your payment address, GET /users/me) to invoke this chute.`,
          { headers },
        );
      }
    }
    if (!input.unlimited) ledger.add(counter, input.windowSeconds + 1);
    return { headers };
  } finally {
    ledger.schedule(deps.redis, defer);
  }
}

/** Stores balances the metering flush just wrote, so the gate sees deductions at once. */
export async function cacheBalances(redis: Redis, updated: { userId: string; balance: string }[]): Promise<void> {
  if (updated.length === 0) return;
  const pipe = redis.pipeline();
  for (const { userId, balance } of updated) pipe.set(balanceKey(userId), balance, { ex: BALANCE_CACHE_TTL_S });
  await pipe.exec();
}
