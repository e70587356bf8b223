/**
 * One contract, two backends: the same assertions run through the real `@upstash/redis`
 * client against the adapter over the embedded twin and over a real Redis (REDIS_URL,
 * set in CI), so the twin can never drift from Redis unnoticed.
 */
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryRedis, SUPPORTED_COMMANDS } from "../../infra/dev/memory-redis.ts";
import {
  memoryBackend,
  type RedisBackend,
  redisBackend,
  startUpstashAdapter,
  type UpstashAdapter,
} from "../../infra/dev/upstash-adapter.ts";

const backends: [string, () => RedisBackend][] = [["embedded twin", () => memoryBackend()]];
if (process.env.REDIS_URL) backends.push(["real Redis", () => redisBackend(process.env.REDIS_URL as string)]);
if (process.env.CI && !process.env.REDIS_URL) throw new Error("CI must set REDIS_URL so the real-Redis lane runs");

describe.each(backends)("Upstash REST adapter over the %s", (_name, makeBackend) => {
  let adapter: UpstashAdapter;
  let redis: Redis;
  const key = (suffix: string) => `contract:${process.pid}:${suffix}:${Math.random().toString(36).slice(2)}`;

  beforeAll(async () => {
    adapter = await startUpstashAdapter({ backend: makeBackend(), token: "test-token" });
    redis = new Redis({ url: adapter.url, token: "test-token", retry: false, enableTelemetry: false });
  });
  afterAll(() => adapter.close());

  it("stores strings and JSON, unicode and binary-looking values intact", async () => {
    const k = key("str");
    expect(await redis.set(k, "héllo ✓ \u0000 end")).toBe("OK");
    expect(await redis.get(k)).toBe("héllo ✓ \u0000 end");
    await redis.set(k, { nested: [1, "two"] });
    expect(await redis.get(k)).toEqual({ nested: [1, "two"] });
    expect(await redis.get(key("missing"))).toBeNull();
  });

  it("honours SET options NX, XX, EX and GET", async () => {
    const k = key("set");
    expect(await redis.set(k, "a", { nx: true })).toBe("OK");
    expect(await redis.set(k, "b", { nx: true })).toBeNull();
    expect(await redis.set(key("none"), "x", { xx: true })).toBeNull();
    expect(await redis.set(k, "c", { ex: 100, get: true })).toBe("a");
    const ttl = await redis.ttl(k);
    expect(ttl).toBeGreaterThan(90);
    expect(ttl).toBeLessThanOrEqual(100);
    expect(await redis.ttl(key("none"))).toBe(-2);
  });

  it("expires keys", async () => {
    const k = key("exp");
    await redis.set(k, "v", { px: 50 });
    await new Promise((r) => setTimeout(r, 80));
    expect(await redis.get(k)).toBeNull();
    expect(await redis.exists(k)).toBe(0);
  });

  it("counts with INCR/INCRBY/DECR and rejects non-integers", async () => {
    const k = key("n");
    expect(await redis.incr(k)).toBe(1);
    expect(await redis.incrby(k, 10)).toBe(11);
    expect(await redis.decr(k)).toBe(10);
    const text = key("t");
    await redis.set(text, "text");
    await expect(redis.incr(text)).rejects.toThrow(/not an integer/);
  });

  it("keeps hashes", async () => {
    const k = key("h");
    expect(await redis.hset(k, { a: "1", b: "x" })).toBe(2);
    expect(await redis.hget(k, "b")).toBe("x");
    expect(await redis.hincrby(k, "a", 5)).toBe(6);
    expect(await redis.hgetall(k)).toEqual({ a: 6, b: "x" });
    expect(await redis.hdel(k, "a", "nope")).toBe(1);
    expect(await redis.hlen(k)).toBe(1);
  });

  it("keeps sorted sets for sliding windows", async () => {
    const k = key("z");
    await redis.zadd(k, { score: 1, member: "a" }, { score: 2, member: "b" }, { score: 3, member: "c" });
    expect(await redis.zcard(k)).toBe(3);
    expect(await redis.zrange(k, 0, -1)).toEqual(["a", "b", "c"]);
    expect(await redis.zrange(k, 2, "+inf", { byScore: true })).toEqual(["b", "c"]);
    expect(await redis.zrange(k, 0, 0, { withScores: true })).toEqual(["a", 1]);
    expect(await redis.zcount(k, "(1", 3)).toBe(2);
    expect(await redis.zremrangebyscore(k, "-inf", 1)).toBe(1);
    expect(await redis.zscore(k, "c")).toBe(3);
  });

  it("keeps sets and lists", async () => {
    const s = key("s");
    expect(await redis.sadd(s, "a", "b", "a")).toBe(2);
    expect(await redis.sismember(s, "b")).toBe(1);
    expect((await redis.smembers(s)).sort()).toEqual(["a", "b"]);
    const l = key("l");
    expect(await redis.rpush(l, "1", "2", "3")).toBe(3);
    expect(await redis.lpush(l, "0")).toBe(4);
    expect(await redis.lrange(l, 0, -1)).toEqual([0, 1, 2, 3]);
    expect(await redis.ltrim(l, 1, 2)).toBe("OK");
    expect(await redis.lrange(l, 0, -1)).toEqual([1, 2]);
  });

  it("appends to and reads streams (build logs)", async () => {
    const k = key("x");
    const id = await redis.xadd(k, "*", { log: "one" });
    await redis.xadd(k, "*", { log: "two" });
    expect(typeof id).toBe("string");
    const entries = await redis.xrange(k, "-", "+");
    expect(Object.values(entries).map((e) => e.log)).toEqual(["one", "two"]);
  });

  it("answers WRONGTYPE like Redis", async () => {
    const k = key("wt");
    await redis.set(k, "v");
    await expect(redis.hget(k, "f")).rejects.toThrow(/WRONGTYPE/);
  });

  it("runs pipelines and transactions, reporting errors per command", async () => {
    const k = key("p");
    const p = redis.pipeline();
    p.set(k, "1");
    p.incr(k);
    p.get(k);
    expect(await p.exec()).toEqual(["OK", 2, 2]);
    const tx = redis.multi();
    tx.incr(k);
    tx.incr(k);
    expect(await tx.exec()).toEqual([3, 4]);
  });

  it("refuses commands outside the platform's subset on every backend", async () => {
    await expect(redis.eval("return 1", [], [])).rejects.toThrow(/not in the platform's Redis subset/);
    const res = await fetch(adapter.url, {
      method: "POST",
      headers: { authorization: "Bearer test-token" },
      body: JSON.stringify(["SELECT", "2"]),
    });
    expect(res.status).toBe(400);
  });

  it("requires the bearer token", async () => {
    const res = await fetch(adapter.url, { method: "POST", body: JSON.stringify(["PING"]) });
    expect(res.status).toBe(401);
  });
});

describe("embedded twin command subset", () => {
  it("answers an unknown command with an error, so nothing silently depends on it", () => {
    const twin = new MemoryRedis();
    const reply = twin.execute(["EVALSHA", "abc", "0"]);
    expect(reply).toBeInstanceOf(Error);
    expect(String((reply as Error).message)).toMatch(/unknown command/);
  });

  it("supports exactly the pinned subset (extend both when the platform needs more)", () => {
    expect(SUPPORTED_COMMANDS).toEqual(
      [
        "DBSIZE",
        "DECR",
        "DECRBY",
        "DEL",
        "ECHO",
        "EXISTS",
        "EXPIRE",
        "GET",
        "GETDEL",
        "HDEL",
        "HGET",
        "HGETALL",
        "HINCRBY",
        "HLEN",
        "HMGET",
        "HSET",
        "INCR",
        "INCRBY",
        "LLEN",
        "LPOP",
        "LPUSH",
        "LRANGE",
        "LTRIM",
        "MGET",
        "PEXPIRE",
        "PING",
        "PTTL",
        "RPOP",
        "RPUSH",
        "SADD",
        "SCARD",
        "SET",
        "SISMEMBER",
        "SMEMBERS",
        "SREM",
        "TTL",
        "XADD",
        "XLEN",
        "XRANGE",
        "ZADD",
        "ZCARD",
        "ZCOUNT",
        "ZINCRBY",
        "ZRANGE",
        "ZREM",
        "ZREMRANGEBYSCORE",
        "ZSCORE",
      ].sort(),
    );
  });

  it("uses its injected clock for expiry", () => {
    let now = 1_000;
    const twin = new MemoryRedis(() => now);
    twin.execute(["SET", "k", "v", "EX", "10"]);
    now += 9_999;
    expect(String(twin.execute(["GET", "k"]))).toBe("v");
    now += 1;
    expect(twin.execute(["GET", "k"])).toBeNull();
  });
});
