/**
 * Scoring and weights inside workerd on real Postgres: a known invocation set gives the
 * features and scores worked out by hand (medians, caps, bounties, exclusions); a run
 * records weights on the dev chain, cites the window's exports and is served by
 * `/miner/scores`; the rate limit skips a run; the rpc chain signs `set_weights`, which
 * the fake node decodes. Each test has its own 7-day window in 2023.
 */
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { afterAll, describe, expect, inject, it } from "vitest";
import { FileChain } from "../../src/chain/file.ts";
import { signerFromSeed } from "../../src/chain/keys.ts";
import { openDatabase, withConnection } from "../../src/db/client.ts";
import { minerScores, scoreRuns } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import worker from "../../src/index.ts";
import { exportHour } from "../../src/services/exports.ts";
import { minerFeatures, runScoring, scoreMiners, WEIGHTS_VERSION_KEY } from "../../src/services/scores.ts";
import { KEYS, WORKERS_SCORING_NETUID } from "../support/chain-fixture.ts";
import { API_HOST } from "./accounts.ts";
import { advanceDevChain, openFakeSubtensor, randomHotkey } from "./chain-helpers.ts";
import { callHost, expectError } from "./helpers.ts";
import { at, invocation, seedInvocations } from "./invocation-seed.ts";

const config = configFor(env);
const handle = openDatabase(config);
const db = handle.db;
afterAll(() => handle.close());

const HOUR = 3_600_000;
const DEV_MINERS = {
  a: "5Cfv7fcjhtGaQEjdKEHfxgRpS97TLUqmRjeXwTtYUk8S7eui",
  b: "5G1ZCR6235ME8VfZ2CXcNaJ3npFL45krUKdatXVMSgBPSaLF",
};

/**
 * The known set, in the 7 days before `end`. By hand:
 * - chute `steps`: s/step 1 (A), 2 (B), 3 (A) → median 2. A's 10 steps in 10 s stay 10 s
 *   (faster than 20); B's 10 steps in 20 s stay 20 s (not slower); A's 20 steps in 60 s
 *   are capped at 40 s.
 * - chute `tokens`: s/token 0.02, 0.08 → median 0.05. B's 100 tokens in 2 s stay 2 s;
 *   50 tokens in 4 s are capped at 2.5 s.
 * - chute `plain` (no metrics): C's 7.5 s at multiplier 0.087671 → 0.6575325.
 * compute_units = Σ bounty + multiplier × T:
 *   A = 1·10 + 2·40 = 90; B = (100 + 0.5·20) + 2 + (30 + 2.5) = 144.5; C = 0.6575325.
 * Left out: a failure, an attempt still running, a uid-0 attempt, one before the window.
 */
function knownSet(end: Date, hotkeys: { a: string; b: string; c: string }) {
  const start = new Date(end.getTime() - 7 * 24 * HOUR);
  const t = (hoursIn: number, seconds = 0) => at(new Date(start.getTime() + hoursIn * HOUR), seconds);
  const run = (hoursIn: number, seconds: number) => ({ startedAt: t(hoursIn), completedAt: t(hoursIn, seconds) });
  return [
    invocation({ ...run(1, 10), minerHotkey: hotkeys.a, chuteId: "steps", metrics: { steps: 10 } }),
    invocation({
      ...run(2, 20),
      minerHotkey: hotkeys.b,
      chuteId: "steps",
      metrics: { steps: 10 },
      computeMultiplier: 0.5,
      bounty: 100,
    }),
    invocation({
      ...run(3, 60),
      minerHotkey: hotkeys.a,
      chuteId: "steps",
      metrics: { steps: 20 },
      computeMultiplier: 2,
    }),
    invocation({ ...run(4, 2), minerHotkey: hotkeys.b, chuteId: "tokens", metrics: { tokens: 100, tps: 50 } }),
    invocation({ ...run(5, 4), minerHotkey: hotkeys.b, chuteId: "tokens", metrics: { tokens: 50 }, bounty: 30 }),
    invocation({ ...run(6, 7.5), minerHotkey: hotkeys.c, chuteId: "plain", computeMultiplier: 0.087671 }),
    invocation({ ...run(7, 1), minerHotkey: hotkeys.c, chuteId: "plain", errorMessage: "BAD_REQUEST" }),
    invocation({ startedAt: t(8), completedAt: null, minerHotkey: hotkeys.c, chuteId: "plain" }),
    invocation({ ...run(9, 5), minerHotkey: randomHotkey(), minerUid: 0, chuteId: "plain", bounty: 5 }),
    invocation({ ...run(-1, 5), minerHotkey: hotkeys.a, chuteId: "plain" }),
    invocation({ ...run(168, 5), minerHotkey: hotkeys.a, chuteId: "plain" }),
  ];
}

const EXPECTED_SCORES = { a: 0.29645275781778324, b: 0.5900685944963298, c: 0.1134786476858869 };

describe("scores", () => {
  it("computes upstream's features and scores for a known invocation set", async () => {
    const end = new Date(Date.UTC(2023, 2, 1) + Math.floor(Math.random() * 500) * HOUR);
    const hotkeys = { a: randomHotkey(), b: randomHotkey(), c: randomHotkey() };
    await seedInvocations(db, knownSet(end, hotkeys));
    const features = await minerFeatures(db, { start: new Date(end.getTime() - 7 * 24 * HOUR), end });
    const byHotkey = new Map(features.map((f) => [f.minerHotkey, f]));
    expect(features).toHaveLength(3);
    expect(byHotkey.get(hotkeys.a)).toEqual({
      minerHotkey: hotkeys.a,
      compute_units: 90,
      invocation_count: 2,
      unique_chute_count: 1,
      bounty_count: 0,
    });
    expect(byHotkey.get(hotkeys.b)).toEqual({
      minerHotkey: hotkeys.b,
      compute_units: 144.5,
      invocation_count: 3,
      unique_chute_count: 2,
      bounty_count: 2,
    });
    expect(byHotkey.get(hotkeys.c)?.compute_units).toBeCloseTo(0.6575325, 12);
    expect(byHotkey.get(hotkeys.c)).toMatchObject({ invocation_count: 1, unique_chute_count: 1, bounty_count: 0 });
    const scores = new Map(scoreMiners(features).map((m) => [m.minerHotkey, m.score]));
    expect(scores.get(hotkeys.a)).toBeCloseTo(EXPECTED_SCORES.a, 12);
    expect(scores.get(hotkeys.b)).toBeCloseTo(EXPECTED_SCORES.b, 12);
    expect(scores.get(hotkeys.c)).toBeCloseTo(EXPECTED_SCORES.c, 12);
  });

  it("records weights on the dev chain, cites the window's exports, then skips while the rate limit holds", async () => {
    const end = new Date(Date.UTC(2023, 5, 1) + Math.floor(Math.random() * 500) * HOUR);
    const c = randomHotkey();
    await seedInvocations(db, knownSet(end, { ...DEV_MINERS, c }));
    const exported = new Date(end.getTime() - 7 * 24 * HOUR + 3 * HOUR);
    const signer = signerFromSeed(config.VALIDATOR_HOTKEY_SEED ?? "");
    const outcome = await withConnection(db, (connection) =>
      exportHour({ ...connection, bucket: config.BUCKET, signer, now: () => new Date() }, exported),
    );
    // The dev chain's rate limit is 5 blocks; make sure the last weights are further back.
    await advanceDevChain(6);
    const chain = new FileChain({ url: config.CHAIN_FILE_URL ?? "", validatorSeed: config.VALIDATOR_HOTKEY_SEED });
    const first = await runScoring({ db, chain, netuid: 64 }, new Date(end.getTime() + 5 * 60_000));
    expect(first).toMatchObject({ outcome: "recorded", reason: null, miners: 3 });
    // B has the largest score: 65535; A: 0.29645… × 65535 / 0.59006… = 32925; C is not registered.
    expect(first.submission).toMatchObject({ netuid: 64, uids: [1, 2], weights: [32925, 65535], versionKey: 69420 });
    const recorded = await fetch(`${config.CHAIN_FILE_URL}/weights?netuid=64&hotkey=${chain.validatorHotkey}`);
    expect(((await recorded.json()) as { uids: number[]; weights: number[] }[]).at(-1)).toMatchObject({
      uids: [1, 2],
      weights: [32925, 65535],
      version_key: WEIGHTS_VERSION_KEY,
    });

    const second = await runScoring({ db, chain, netuid: 64 }, new Date(end.getTime() + 10 * 60_000));
    expect(second).toMatchObject({ outcome: "skipped", submission: null });
    expect(second.reason).toMatch(/too soon: 0 blocks since the last weights; the chain allows one every 5/);

    const [run] = await db.select().from(scoreRuns).where(eq(scoreRuns.runId, first.runId));
    expect(run).toMatchObject({ netuid: 64, submitted: true, outcome: "recorded", windowEnd: end });
    expect(run?.exportHashes).toEqual([
      {
        hour_start: exported.toISOString(),
        key: outcome.manifest?.key,
        sha256: outcome.manifest?.sha256,
        merkle_root: outcome.manifest?.merkle_root,
        row_count: outcome.manifest?.row_count,
      },
    ]);
    const stored = await db.select().from(minerScores).where(eq(minerScores.runId, first.runId));
    expect(stored.find((m) => m.minerHotkey === c)).toMatchObject({ uid: null, weight: 0 });

    // The routes: the latest run (the skipped one), a chosen run's breakdown, the list.
    const latest = await callHost(API_HOST, "/miner/scores");
    expect(await latest.json()).toMatchObject({ run_id: second.runId, outcome: "skipped", total: 3 });
    const res = await callHost(API_HOST, `/miner/scores?run_id=${first.runId}&limit=2`);
    const body = (await res.json()) as {
      items: { miner_hotkey: string; uid: number | null; weight: number; score: number; normalized: object }[];
      total: number;
      feature_totals: Record<string, number>;
      export_hashes: unknown[];
    };
    expect(body).toMatchObject({ total: 3, export_hashes: run?.exportHashes });
    expect(body.feature_totals).toMatchObject({ invocation_count: 6, unique_chute_count: 4, bounty_count: 2 });
    expect(body.items.map((m) => [m.miner_hotkey, m.uid, m.weight])).toEqual([
      [DEV_MINERS.b, 2, 65535],
      [DEV_MINERS.a, 1, 32925],
    ]);
    expect(body.items[0]?.score).toBeCloseTo(EXPECTED_SCORES.b, 12);
    expect(body.items[0]?.normalized).toMatchObject({
      invocation_count: 0.5,
      unique_chute_count: 0.5,
      bounty_count: 1,
    });
    const one = await (await callHost(API_HOST, `/miner/scores?run_id=${first.runId}&hotkey=${c}`)).json();
    expect(one).toMatchObject({ total: 1, items: [{ miner_hotkey: c, uid: null, weight: 0 }] });
    const runs = (await (await callHost(API_HOST, "/miner/scores/runs?limit=2")).json()) as {
      items: { run_id: string; miners: number; export_count: number }[];
    };
    expect(runs.items.map((r) => [r.run_id, r.miners, r.export_count])).toEqual([
      [second.runId, 3, 1],
      [first.runId, 3, 1],
    ]);
    await expectError(await callHost(API_HOST, "/miner/scores?run_id=nope"), 422, "validation_failed");
    await expectError(await callHost(API_HOST, `/miner/scores?run_id=${crypto.randomUUID()}`), 404, "not_found");
  });

  it("signs set_weights with the validator hotkey for a subtensor node, which decodes and checks it", async () => {
    const end = new Date(Date.UTC(2023, 8, 1) + Math.floor(Math.random() * 500) * HOUR);
    await seedInvocations(db, knownSet(end, { a: KEYS.minerA, b: KEYS.minerB, c: KEYS.minerC }));
    const chain = await openFakeSubtensor();
    try {
      const result = await runScoring({ db, chain, netuid: WORKERS_SCORING_NETUID }, end);
      expect(result).toMatchObject({ outcome: "submitted", reason: null });
      const accepted = (await (await fetch(`${inject("fakeSubtensorUrl")}/submitted`)).json()) as {
        hash: string;
        signer: string;
        call: { netuid: number; dests: number[]; weights: number[]; versionKey: string };
      }[];
      const mine = accepted.find((x) => x.hash === result.submission?.extrinsicHash);
      // minerA uid 1, minerB uid 2, minerC uid 3 on the fixture chain.
      expect(mine).toMatchObject({
        signer: KEYS.validator,
        call: { netuid: WORKERS_SCORING_NETUID, dests: [1, 2, 3], weights: [32925, 65535, 12603], versionKey: "69420" },
      });
      const again = await runScoring({ db, chain, netuid: WORKERS_SCORING_NETUID }, end);
      expect(again.outcome).toBe("skipped");
    } finally {
      await chain.close();
    }
  });

  it("runs from the cron at minute 5 and stores the run even when there is nothing to weigh", async () => {
    const netuid = 45_000 + Math.floor(Math.random() * 5000);
    const scheduledTime = new Date(Date.UTC(2023, 10, 1) + Math.floor(Math.random() * 500) * HOUR + 5 * 60_000);
    const ctx = createExecutionContext();
    await worker.scheduled(
      createScheduledController({ cron: "5 * * * *", scheduledTime }),
      { ...env, NETUID: String(netuid) },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    const [run] = await db.select().from(scoreRuns).where(eq(scoreRuns.netuid, netuid));
    expect(run).toMatchObject({ outcome: "skipped", error: "no registered miner has a positive score" });
  });
});
