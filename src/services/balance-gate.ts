/**
 * @module Admission before an invocation, in one Redis round trip (run alongside the API
 * key lookup): the per-user-and-chute rate limit (a fixed-window counter) and the balance gate (a cached
 * balance; the authoritative deduction happens in the metering flush, which refreshes
 * this cache). Answers carry `RateLimit-Policy` and `RateLimit` (IETF
 * draft-ietf-httpapi-ratelimit-headers), and `Retry-After` when refused.
 *
 * Redis keys: `gateway:rl:{user}:{chute}:{window index}` (counter, expires with its
 * window) and `gateway:balance:{user}` (USD balance as text, 60 s; 5 s when empty). Redis is
 * loss-tolerant here: a lost counter admits a little more, a lost balance is read again
 * from Postgres. When Redis cannot be asked at all, the gate fails open for the rate
 * limit and reads the balance from Postgres (money is never lost: billing is in Postgres).
 * The count is incremented after admission, off the response path.
 */
import { eq } from "drizzle-orm";
import { balances } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";
import { ApiError } from "../lib/errors.ts";
import type { Redis } from "../lib/redis.ts";
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

/**
 * The Redis reads of admission, in one pipeline. Read-only, so the gateway may run it
 * alongside authentication (with the user id an API key carries): a forged key can read
 * nothing and count nothing. Null fields when Redis cannot be asked.
 */
export async function readAdmission(
  redis: Redis,
  userId: string,
  chuteId: string,
  windowSeconds: number,
  nowMs: number,
  apiKeyId?: string,
): Promise<AdmissionReads> {
  try {
    const pipe = redis
      .pipeline()
      .get<string | number>(counterKey(userId, chuteId, windowOf(nowMs, windowSeconds)))
      .get<string | number>(balanceKey(userId));
    if (apiKeyId) pipe.get<ApiKeyCacheEntry>(apiKeyCacheKey(apiKeyId));
    const [count, balance, entry] =
      await pipe.exec<[string | number | null, string | number | null, ApiKeyCacheEntry | null]>();
    return {
      count: count === null ? 0 : Number(count),
      balance: balance === null ? null : String(balance),
      apiKey: apiKeyId ? { apiKeyId, entry: entry ?? null } : undefined,
    };
  } catch {
    return { count: null, balance: null };
  }
}

/**
 * Admits the call or throws 429 `rate_limited` / 402 `payment_required`. The call is
 * counted (`INCR`) only once admitted, off the response path (`defer`); so the limit is
 * checked against the count before this call, and concurrent calls of one user may pass
 * it by as many as are in flight at once (upstream's check-then-add had the same slack).
 */
export async function admitInvocation(
  deps: { redis: Redis; db: AnyDatabase },
  input: AdmissionInput,
  reads: AdmissionReads | Promise<AdmissionReads> | undefined,
  defer: (work: Promise<unknown>) => void,
): Promise<Admission> {
  const window = windowOf(input.nowMs, input.windowSeconds);
  const resetIn = Math.max(1, (window + 1) * input.windowSeconds - Math.floor(input.nowMs / 1000));
  const got =
    (await reads) ?? (await readAdmission(deps.redis, input.userId, input.chuteId, input.windowSeconds, input.nowMs));
  const headers: Record<string, string> = {};
  if (!input.unlimited) {
    const used = (got.count ?? 0) + 1;
    headers["ratelimit-policy"] = `"invocations";q=${input.limit};w=${input.windowSeconds}`;
    headers.ratelimit = `"invocations";r=${Math.max(0, input.limit - used)};t=${resetIn}`;
    if (got.count !== null && used > input.limit) {
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
  if (!input.unlimited) {
    const key = counterKey(input.userId, input.chuteId, window);
    defer(
      deps.redis
        .pipeline()
        .incr(key)
        .expire(key, input.windowSeconds + 1)
        .exec(),
    );
  }
  return { headers };
}

/** Stores balances the metering flush just wrote, so the gate sees deductions at once. */
export async function cacheBalances(redis: Redis, updated: { userId: string; balance: string }[]): Promise<void> {
  if (updated.length === 0) return;
  const pipe = redis.pipeline();
  for (const { userId, balance } of updated) pipe.set(balanceKey(userId), balance, { ex: BALANCE_CACHE_TTL_S });
  await pipe.exec();
}

/** Forgets a cached balance (after a payment credits it). */
export async function forgetBalance(redis: Redis, userId: string): Promise<void> {
  await redis.del(balanceKey(userId));
}
