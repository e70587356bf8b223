/**
 * Admission inside workerd on real Redis and Postgres: the gate answers 402 and 429 with
 * its headers; the isolate's ledger lets warm calls skip Redis, adds their counts to the
 * Redis counter in one sync, and within one sync sees what other isolates changed (their
 * calls, a deleted key's tombstone, a drained balance); stale facts are never used, and
 * counts survive a Redis outage.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/client.ts";
import { balances } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import { ApiError } from "../../src/lib/errors.ts";
import { openRedis, type Redis } from "../../src/lib/redis.ts";
import {
  type AdmissionInput,
  admitInvocation,
  cacheBalances,
  readAdmission,
  warmAdmission,
} from "../../src/services/admission.ts";
import { AdmissionLedger } from "../../src/services/admission-ledger.ts";
import { apiKeyCacheKey } from "../../src/services/api-keys.ts";
import { registerUser, type TestUser } from "./accounts.ts";

const config = configFor(env);
const handle = openDatabase(config);
const db = handle.db;
const redis = openRedis(config);
afterAll(() => handle.close());

const setBalance = (user: TestUser, usd: string) =>
  db.update(balances).set({ balance: usd }).where(eq(balances.userId, user.userId));

/** Redis with a count of the round trips made through it (every command here goes through a pipeline or `get`). */
function countingRedis(): { redis: Redis; trips: () => number } {
  let trips = 0;
  const counted = new Proxy(redis, {
    get(target, property, receiver) {
      if (property === "pipeline") {
        return () => {
          const pipe = target.pipeline();
          const exec = pipe.exec.bind(pipe);
          pipe.exec = ((...args: Parameters<typeof exec>) => {
            trips++;
            return exec(...args);
          }) as typeof pipe.exec;
          return pipe;
        };
      }
      if (property === "get" || property === "set") trips++;
      return Reflect.get(target, property, receiver);
    },
  });
  return { redis: counted, trips: () => trips };
}

/** Admission as the gateway runs it, waiting for what it defers (the ledger's sync) before returning. */
async function admit(input: AdmissionInput, ledger: AdmissionLedger, via: Redis = redis) {
  const deferred: Promise<unknown>[] = [];
  try {
    return await admitInvocation({ redis: via, db }, input, undefined, (work) => deferred.push(work), ledger);
  } finally {
    await Promise.all(deferred);
  }
}

const input = (user: TestUser, overrides: Partial<AdmissionInput> = {}): AdmissionInput => ({
  userId: user.userId,
  chuteId: crypto.randomUUID(),
  unlimited: false,
  free: false,
  limit: 2,
  windowSeconds: 60,
  nowMs: Date.now(),
  ...overrides,
});

const counterKey = (i: AdmissionInput) =>
  `gateway:rl:${i.userId}:${i.chuteId}:${Math.floor(i.nowMs / 1000 / i.windowSeconds)}`;

describe("admission", () => {
  it("refuses an empty balance with 402 unless free", async () => {
    const user = await registerUser();
    await setBalance(user, "0");
    const ledger = new AdmissionLedger(1000, 10);
    const refused = await admit(input(user), ledger).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).status).toBe(402);
    await admit(input(user, { free: true }), ledger);
  });

  it("counts per user and chute, answering 429 with RateLimit headers and Retry-After", async () => {
    const user = await registerUser();
    await setBalance(user, "5");
    const ledger = new AdmissionLedger(1000, 10);
    const fixed = input(user);
    const first = await admit(fixed, ledger);
    expect(first.headers["ratelimit-policy"]).toBe('"invocations";q=2;w=60');
    expect(first.headers.ratelimit).toMatch(/^"invocations";r=1;t=\d+$/);
    await admit(fixed, ledger);
    const refused = (await admit(fixed, ledger).catch((e: unknown) => e)) as ApiError;
    expect(refused.status).toBe(429);
    expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
    // Another chute has its own window; an unlimited user has none.
    await admit({ ...fixed, chuteId: crypto.randomUUID() }, ledger);
    expect((await admit({ ...fixed, unlimited: true }, ledger)).headers).toEqual({});
  });
});

describe("admission ledger", () => {
  it("admits warm calls without reading Redis and adds their counts to the Redis counter in one sync", async () => {
    const user = await registerUser();
    await setBalance(user, "5");
    const ledger = new AdmissionLedger(5_000, 20);
    const counting = countingRedis();
    const call = input(user, { limit: 100 });
    await cacheBalances(redis, [{ userId: user.userId, balance: "5" }]);
    await admit(call, ledger, counting.redis); // cold: one read, then one sync
    expect(counting.trips()).toBe(2);
    expect(Number(await redis.get(counterKey(call)))).toBe(1);

    // Five concurrent warm calls: no reads, one shared sync.
    const deferred: Promise<unknown>[] = [];
    const admitted = await Promise.all(
      Array.from({ length: 5 }, () =>
        admitInvocation({ redis: counting.redis, db }, call, undefined, (work) => deferred.push(work), ledger),
      ),
    );
    // Counted in the isolate as they were admitted: each saw the calls before it.
    expect(admitted.map((a) => a.headers.ratelimit?.split(";")[1])).toEqual(["r=98", "r=97", "r=96", "r=95", "r=94"]);
    expect(Number(await redis.get(counterKey(call)))).toBe(1);
    await Promise.all(deferred);
    expect(counting.trips()).toBe(3);
    expect(Number(await redis.get(counterKey(call)))).toBe(6);
  });

  it("sees other isolates' calls after one sync, and refuses past the limit", async () => {
    const user = await registerUser();
    await setBalance(user, "5");
    const ledger = new AdmissionLedger(5_000, 10);
    const call = input(user, { limit: 5 });
    await admit(call, ledger);
    // Another isolate admitted three calls meanwhile.
    await redis.incrby(counterKey(call), 3);
    // Not seen yet: admitted, and its sync brings back the total (1 + 3 + 1 = 5).
    await admit(call, ledger);
    expect(Number(await redis.get(counterKey(call)))).toBe(5);
    const refused = (await admit(call, ledger).catch((e: unknown) => e)) as ApiError;
    expect(refused.status).toBe(429);
  });

  it("sees a deleted key's tombstone and a drained balance within one sync", async () => {
    const user = await registerUser();
    const apiKeyId = crypto.randomUUID().replaceAll("-", "");
    const entry = {
      keyHash: "00".repeat(32),
      grant: { apiKeyId, admin: true, scopes: [] },
      user: { userId: user.userId, username: user.username, hotkey: user.hotkey.ss58, permissionsBitmask: 0 },
    };
    await redis.set(apiKeyCacheKey(apiKeyId), entry, { ex: 60 });
    await cacheBalances(redis, [{ userId: user.userId, balance: "5" }]);
    const ledger = new AdmissionLedger(5_000, 10);
    const query = { userId: user.userId, chuteId: crypto.randomUUID(), windowSeconds: 60, apiKeyId };
    expect(warmAdmission(ledger, { ...query, nowMs: Date.now(), chuteFree: false })).toBeNull();
    await readAdmission(redis, { ...query, nowMs: Date.now() }, ledger);
    const warm = warmAdmission(ledger, { ...query, nowMs: Date.now(), chuteFree: false });
    expect(warm).toMatchObject({ count: 0, balance: "5", apiKey: { apiKeyId, entry } });

    // Elsewhere: the key is deleted and the balance spent.
    await redis.set(apiKeyCacheKey(apiKeyId), { deleted: true }, { ex: 60 });
    await cacheBalances(redis, [{ userId: user.userId, balance: "0" }]);
    await ledger.sync(redis);
    expect(warmAdmission(ledger, { ...query, nowMs: Date.now(), chuteFree: false })).toEqual({
      count: 0,
      balance: null,
      apiKey: { apiKeyId, entry: { deleted: true } },
    });
    const balanceOnly = warmAdmission(ledger, {
      ...query,
      apiKeyId: undefined,
      nowMs: Date.now(),
      chuteFree: false,
      exempt: { unlimited: true, free: false },
    });
    expect(balanceOnly?.balance).toBe("0");
  });

  it("never uses facts older than its freshness limit", async () => {
    const user = await registerUser();
    await setBalance(user, "5");
    const ledger = new AdmissionLedger(1_000, 10);
    const call = input(user, { limit: 100 });
    await admit(call, ledger);
    const query = { ...call, exempt: call, chuteFree: false };
    expect(warmAdmission(ledger, { ...query, nowMs: Date.now() })).not.toBeNull();
    expect(warmAdmission(ledger, { ...query, nowMs: Date.now() + 1_500 })).toBeNull();
  });

  it("keeps counting calls while a sync adds them, even if a Redis read meanwhile does not include them", async () => {
    const ledger = new AdmissionLedger(5_000, 10);
    const key = `gateway:rl:test:${crypto.randomUUID()}:0`;
    ledger.learnCount(key, 0, 60, Date.now());
    ledger.add(key, 60);
    ledger.add(key, 60);
    const syncing = ledger.sync(redis);
    // A cold read that ran before the INCRBY landed saw 0: the two calls still count.
    ledger.learnCount(key, 0, 60, Date.now());
    expect(ledger.count(key)).toBe(2);
    await syncing;
    expect(ledger.count(key)).toBe(2);
    expect(Number(await redis.get(key))).toBe(2);
  });

  it("keeps counts through a Redis outage and adds them once Redis answers", async () => {
    const unreachable = openRedis({ UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9", UPSTASH_REDIS_REST_TOKEN: "x" });
    const ledger = new AdmissionLedger(1000, 10);
    const key = `gateway:rl:test:${crypto.randomUUID()}:0`;
    ledger.add(key, 60);
    ledger.add(key, 60);
    await ledger.sync(unreachable);
    expect(ledger.count(key)).toBe(2);
    expect(await redis.get(key)).toBeNull();
    await ledger.sync(redis);
    expect(Number(await redis.get(key))).toBe(2);
    expect(ledger.count(key)).toBe(2);
  });
});
