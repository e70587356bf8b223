/**
 * Metering and billing inside workerd on real Postgres: the flush writes each attempt
 * once and deducts exactly the sum of the newly written successes' costs (a batch flushed
 * twice bills nothing twice), never bills failures or free users, lets the first success
 * claim a chute's bounty; the Metering Durable Object keeps records until they are in
 * Postgres (admission: ./admission.test.ts).
 */
import { env } from "cloudflare:workers";
import { eq, sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/client.ts";
import { balances, bounties, chutes, instanceAudit, instances } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import { createLogger } from "../../src/lib/log.ts";
import { openRedis } from "../../src/lib/redis.ts";
import { applyInstanceOutcomes } from "../../src/services/instances.ts";
import { flushInvocations, type InvocationRecord, invocationCost } from "../../src/services/metering.ts";
import { flushAllMetering, meteringShard } from "../../src/services/metering-client.ts";
import { seedInstance, seedMinerAndChute, seedNodes } from "../support/miner-seed.ts";
import { registerUser, setPermissions, type TestUser } from "./accounts.ts";
import { builtImage, deploy, deployBody } from "./catalogue.ts";

const config = configFor(env);
const handle = openDatabase(config);
const db = handle.db;
const _redis = openRedis(config);
afterAll(() => handle.close());

async function setBalance(user: TestUser, usd: string) {
  await db.update(balances).set({ balance: usd }).where(eq(balances.userId, user.userId));
}
const balanceOf = async (user: TestUser) =>
  (await db.select({ b: balances.balance }).from(balances).where(eq(balances.userId, user.userId)))[0]?.b;

function record(user: TestUser, chuteId: string, overrides: Partial<InvocationRecord> = {}): InvocationRecord {
  const started = new Date(Date.now() - 2500);
  return {
    invocationId: crypto.randomUUID(),
    parentInvocationId: crypto.randomUUID(),
    chuteId,
    chuteUserId: user.userId,
    functionName: "echo",
    userId: user.userId,
    imageId: "image",
    imageUserId: user.userId,
    instanceId: "instance",
    minerUid: 3,
    minerHotkey: "5Cfv7fcjhtGaQEjdKEHfxgRpS97TLUqmRjeXwTtYUk8S7eui",
    startedAt: started.toISOString(),
    completedAt: new Date().toISOString(),
    errorMessage: null,
    computeMultiplier: 2,
    metrics: { tokens: 3 },
    costUsd: invocationCost(2.5, 2, 0),
    outcome: overrides.errorMessage ? "failure" : "success",
    ...overrides,
  };
}

const rowsOf = async (user: TestUser) =>
  (
    await db.execute<{ invocation_id: string; cost_usd: string; bounty: number; error_message: string | null }>(
      sql`select invocation_id, cost_usd::text as cost_usd, bounty, error_message from invocations where user_id = ${user.userId}`,
    )
  ).rows;

async function chuteOf(user: TestUser): Promise<string> {
  await setPermissions(user, ["developer"]);
  const image = await builtImage(user);
  const chute = await deploy(user, deployBody(`${user.username}/${image.name}:${image.tag}`));
  return String(chute.chute_id);
}

describe("metering", () => {
  it("prices ceil(seconds) × multiplier × base rate / 3600 × (1 − discount)", () => {
    expect(invocationCost(2.1, 1, 0)).toBeCloseTo((3 * 2.7375) / 3600, 12);
    expect(invocationCost(0.2, 2, 0.5)).toBeCloseTo((1 * 2 * 2.7375 * 0.5) / 3600, 12);
    expect(invocationCost(5, 1, 1)).toBe(0);
  });

  it("writes each attempt once and bills only newly written successes, exactly", async () => {
    const user = await registerUser();
    const chuteId = await chuteOf(user);
    await setBalance(user, "10");
    const ok = [record(user, chuteId), record(user, chuteId)];
    const failed = record(user, chuteId, { errorMessage: "stream broke", costUsd: 0.5 });
    const first = await flushInvocations(db, [...ok, failed]);
    expect(first.inserted).toBe(3);
    const expected = 10 - 2 * Number(invocationCost(2.5, 2, 0).toFixed(10));
    expect(Number(await balanceOf(user))).toBeCloseTo(expected, 10);
    // The same batch again (a flush retried after its commit): nothing new, nothing billed.
    const again = await flushInvocations(db, [...ok, failed]);
    expect(again).toMatchObject({ inserted: 0, balances: [] });
    expect(Number(await balanceOf(user))).toBeCloseTo(expected, 10);
    const rows = await rowsOf(user);
    expect(rows).toHaveLength(3);
    expect(rows.find((r) => r.error_message !== null)?.cost_usd).toBe("0.0000000000");
    // The balance moved by exactly the sum of the rows.
    const sum = rows.reduce((total, r) => total + Number(r.cost_usd), 0);
    expect(10 - Number(await balanceOf(user))).toBeCloseTo(sum, 10);
  });

  it("never charges a free account", async () => {
    const user = await registerUser();
    const chuteId = await chuteOf(user);
    await setPermissions(user, ["developer", "free_account"]);
    await setBalance(user, "1");
    await flushInvocations(db, [record(user, chuteId)]);
    expect(await balanceOf(user)).toBe("1.0000000000");
  });

  it("lets the first success claim a chute's bounty, once", async () => {
    const user = await registerUser();
    const chuteId = await chuteOf(user);
    await db
      .insert(bounties)
      .values({ chuteId, bounty: 250 })
      .onConflictDoUpdate({ target: bounties.chuteId, set: { bounty: 250 } });
    const early = record(user, chuteId, { startedAt: new Date(Date.now() - 5000).toISOString() });
    const late = record(user, chuteId);
    const result = await flushInvocations(db, [late, early, record(user, chuteId, { errorMessage: "x", costUsd: 0 })]);
    expect(result.bounties).toEqual([{ chuteId, invocationId: early.invocationId, bounty: 250 }]);
    expect(await db.select().from(bounties).where(eq(bounties.chuteId, chuteId))).toEqual([]);
    const rows = await rowsOf(user);
    expect(rows.find((r) => r.invocation_id === early.invocationId)?.bounty).toBe(250);
    expect(rows.filter((r) => r.bounty > 0)).toHaveLength(1);
    const [chute] = await db.select({ n: chutes.invocationCount }).from(chutes).where(eq(chutes.chuteId, chuteId));
    expect(chute?.n).toBe(2);
  });

  it("keeps records in the Metering Durable Object until they are in Postgres", async () => {
    const user = await registerUser();
    const chuteId = await chuteOf(user);
    await setBalance(user, "3");
    const shard = meteringShard(config, 0);
    const r = record(user, chuteId);
    await shard.record([r]);
    await shard.record([r]); // a retried hand-over stores the same key
    await flushAllMetering(config);
    expect(await shard.pending()).toBe(0);
    expect(await rowsOf(user)).toHaveLength(1);
  });
});

describe("instance verdicts from the metering flush", () => {
  const deps = { db, config, log: createLogger("error"), now: () => new Date() };
  const failuresOf = async (instanceId: string) =>
    (await db.select().from(instances).where(eq(instances.instanceId, instanceId)))[0]?.consecutiveFailures;

  it("count each written failure once, reset on a success, and remove the instance at the limit", async () => {
    const user = await registerUser();
    const miner = `5Sim${crypto.randomUUID().replaceAll("-", "").slice(0, 40)}`;
    const chute = await seedMinerAndChute(db, miner);
    const instanceId = await seedInstance(db, { ...chute, minerHotkey: miner, nodeIds: await seedNodes(db, miner) });
    const attempt = (outcome: InvocationRecord["outcome"]) =>
      record(user, chute.chuteId, {
        instanceId,
        outcome,
        errorMessage: outcome === "success" ? null : "instance answered 502",
        costUsd: 0,
      });

    const twoFailures = [attempt("failure"), attempt("neutral"), attempt("failure")];
    await applyInstanceOutcomes(deps, (await flushInvocations(db, twoFailures)).instanceOutcomes);
    expect(await failuresOf(instanceId)).toBe(2);
    // The same batch flushed again writes nothing, so it counts nothing.
    expect((await flushInvocations(db, twoFailures)).instanceOutcomes).toEqual([]);
    expect(await failuresOf(instanceId)).toBe(2);

    await applyInstanceOutcomes(
      deps,
      (await flushInvocations(db, [attempt("failure"), attempt("success")])).instanceOutcomes,
    );
    expect(await failuresOf(instanceId)).toBe(0);

    const many = Array.from({ length: config.INSTANCE_FAILURE_LIMIT }, () => attempt("failure"));
    await applyInstanceOutcomes(deps, (await flushInvocations(db, many)).instanceOutcomes);
    expect(await failuresOf(instanceId)).toBeUndefined();
    const [audit] = await db.select().from(instanceAudit).where(eq(instanceAudit.instanceId, instanceId));
    expect(audit?.deletionReason).toMatch(/consecutive failures/);
  });
});
