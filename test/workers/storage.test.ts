import { env } from "cloudflare:workers";
import { eq, sql } from "drizzle-orm";
import { describe, expect, inject, it } from "vitest";
import { openDatabase } from "../../src/db/client.ts";
import { balances, invocations, users } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import { openRedis } from "../../src/lib/redis.ts";

const config = configFor(env);

function newUser(tag: string) {
  const id = crypto.randomUUID();
  return {
    userId: id,
    username: `u_${tag}_${id.slice(0, 6)}`,
    coldkey: `cold-${id}`,
    fingerprintHash: `fp-${id}`,
    paymentAddress: `pay-${id}`,
    developerPaymentAddress: `dev-${id}`,
  };
}

describe("Postgres through the Neon driver and drizzle", () => {
  it(`round-trips rows through the ${inject("servicesInfo").postgres} server`, async () => {
    const { db, close } = openDatabase(config);
    try {
      const user = newUser("rt");
      await db.transaction(async (tx) => {
        await tx.insert(users).values(user);
        await tx.insert(balances).values({ userId: user.userId, balance: "12.5000000001" });
      });
      const [row] = await db
        .select({ username: users.username, balance: balances.balance })
        .from(users)
        .innerJoin(balances, eq(balances.userId, users.userId))
        .where(eq(users.userId, user.userId));
      // numeric keeps every decimal place: money is never a float.
      expect(row).toEqual({ username: user.username, balance: "12.5000000001" });
    } finally {
      await close();
    }
  });

  it("rolls a failed transaction back completely", async () => {
    const { db, close } = openDatabase(config);
    try {
      const user = newUser("rb");
      await expect(
        db.transaction(async (tx) => {
          await tx.insert(users).values(user);
          // Same username again: a unique violation aborts the whole transaction.
          await tx.insert(users).values({ ...newUser("rb2"), username: user.username });
        }),
      ).rejects.toThrow();
      const rows = await db.select().from(users).where(eq(users.userId, user.userId));
      expect(rows).toHaveLength(0);
    } finally {
      await close();
    }
  });

  it("stores invocations in weekly partitions, creating one on demand", async () => {
    const { db, close } = openDatabase(config);
    try {
      const longAgo = new Date("2024-03-06T10:15:00Z");
      const partition = await db.execute(
        sql`select ensure_invocation_partition(${longAgo.toISOString()}::timestamptz) as name`,
      );
      expect(partition.rows[0]).toEqual({ name: "invocations_p2024_10" });
      const id = crypto.randomUUID();
      await db.insert(invocations).values({
        invocationId: id,
        parentInvocationId: id,
        chuteId: "c",
        chuteUserId: "cu",
        functionName: "f",
        userId: "u",
        imageId: "i",
        imageUserId: "iu",
        instanceId: "inst",
        minerUid: 1,
        minerHotkey: "hk",
        startedAt: longAgo,
        computeMultiplier: 0.5,
      });
      const stored = await db.execute(
        sql`select tableoid::regclass::text as partition from invocations where invocation_id = ${id}`,
      );
      expect(stored.rows[0]).toEqual({ partition: "invocations_p2024_10" });
    } finally {
      await close();
    }
  });
});

describe("Redis through @upstash/redis", () => {
  it(`round-trips values through the ${inject("servicesInfo").redis} backend`, async () => {
    const redis = openRedis(config);
    const key = `test:${crypto.randomUUID()}`;
    await redis.set(key, { hello: "wörld", n: 1 }, { ex: 60 });
    expect(await redis.get(key)).toEqual({ hello: "wörld", n: 1 });
    expect(await redis.ttl(key)).toBeGreaterThan(50);
    expect(await redis.incr(`${key}:n`)).toBe(1);
    expect(await redis.incrby(`${key}:n`, 41)).toBe(42);
    await redis.hset(`${key}:h`, { a: "1", b: "two" });
    expect(await redis.hgetall(`${key}:h`)).toEqual({ a: 1, b: "two" });
    const p = redis.pipeline();
    p.zadd(`${key}:z`, { score: 2, member: "b" }, { score: 1, member: "a" });
    p.zrange(`${key}:z`, 0, -1);
    expect(await p.exec()).toEqual([2, ["a", "b"]]);
    expect(await redis.del(key, `${key}:n`, `${key}:h`, `${key}:z`)).toBe(4);
  });

  it("reports a Redis error instead of swallowing it", async () => {
    const redis = openRedis(config);
    const key = `test:${crypto.randomUUID()}`;
    await redis.set(key, "text");
    await expect(redis.incr(key)).rejects.toThrow(/not an integer/);
    await redis.del(key);
  });
});

describe("R2 binding", () => {
  it("stores and reads back an object", async () => {
    const key = `test/${crypto.randomUUID()}.txt`;
    await config.BUCKET.put(key, "hello r2", { httpMetadata: { contentType: "text/plain" } });
    const object = await config.BUCKET.get(key);
    expect(await object?.text()).toBe("hello r2");
    expect(object?.httpMetadata?.contentType).toBe("text/plain");
  });
});
