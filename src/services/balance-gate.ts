/**
 * @module Admission before an invocation, in one Redis round trip: the per-user-and-chute
 * rate limit (a fixed-window counter, `INCR` is atomic) and the balance gate (a cached
 * balance; the authoritative deduction happens in the metering flush, which refreshes
 * this cache). Answers carry `RateLimit-Policy` and `RateLimit` (IETF
 * draft-ietf-httpapi-ratelimit-headers), and `Retry-After` when refused.
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
import type { Redis } from "../lib/redis.ts";

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

/** Admits the call or throws 429 `rate_limited` / 402 `payment_required`. */
export async function admitInvocation(
  deps: { redis: Redis; db: AnyDatabase },
  input: AdmissionInput,
): Promise<Admission> {
  const window = Math.floor(input.nowMs / 1000 / input.windowSeconds);
  const resetIn = Math.max(1, (window + 1) * input.windowSeconds - Math.floor(input.nowMs / 1000));
  const counterKey = `gateway:rl:${input.userId}:${input.chuteId}:${window}`;
  let count: number | null = null;
  let cachedBalance: string | null = null;
  let fromCache = false;
  if (!input.unlimited || !input.free) {
    try {
      const pipe = deps.redis.pipeline();
      {
        if (!input.unlimited) pipe.incr(counterKey).expire(counterKey, input.windowSeconds + 1);
        if (!input.free) pipe.get<string | number>(balanceKey(input.userId));
        const results = (await pipe.exec()) as unknown[];
        if (!input.unlimited) count = Number(results[0]);
        if (!input.free) {
          const value = results[input.unlimited ? 0 : 2];
          if (value !== null && value !== undefined) {
            cachedBalance = String(value);
            fromCache = true;
          }
        }
      }
    } catch {
      // Fail open on the rate limit; the balance is read from Postgres below.
    }
  }
  const headers: Record<string, string> = {};
  if (!input.unlimited) {
    headers["ratelimit-policy"] = `"invocations";q=${input.limit};w=${input.windowSeconds}`;
    const remaining = count === null ? input.limit : Math.max(0, input.limit - count);
    headers.ratelimit = `"invocations";r=${remaining};t=${resetIn}`;
    if (count !== null && count > input.limit) {
      throw new ApiError(
        "rate_limited",
        `Rate limit reached: ${input.limit} invocations of this chute per ${input.windowSeconds} s; retry in ${resetIn} s.`,
        { headers: { ...headers, "retry-after": String(resetIn) } },
      );
    }
  }
  if (!input.free) {
    if (!fromCache) {
      const [row] = await deps.db
        .select({ balance: balances.balance })
        .from(balances)
        .where(eq(balances.userId, input.userId));
      cachedBalance = row?.balance ?? "0";
      // An empty balance is cached briefly, so a top-up is seen within seconds.
      const ttl = Number(cachedBalance) > 0 ? BALANCE_CACHE_TTL_S : EMPTY_BALANCE_CACHE_TTL_S;
      await deps.redis.set(balanceKey(input.userId), cachedBalance, { ex: ttl }).catch(() => null);
    }
    if (!(Number(cachedBalance) > 0)) {
      throw new ApiError(
        "payment_required",
        `Your account balance is $${Number(cachedBalance).toFixed(4)}: top up your balance (send TAO to your payment address, GET /users/me) to invoke this chute.`,
        { headers },
      );
    }
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
