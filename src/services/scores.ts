/**
 * @module Miner scores and weights (upstream-flows §3.2, the weight setter of revision
 * 4442866), computed from `invocations` by cron and stored per run with the exports of
 * the window, then submitted through the chain (`set_weights` signed by the validator
 * hotkey; the dev chain records it).
 *
 * Per miner hotkey, over successful, completed attempts with `miner_uid > 0` that started
 * in the window: `invocation_count`, `unique_chute_count` (distinct chutes),
 * `bounty_count` (attempts with a bounty) and `compute_units` = Σ bounty +
 * multiplier × T, where T is the attempt's elapsed seconds capped at the chute's median
 * speed: steps × median seconds per step when the attempt reports steps and ran slower
 * than that, else tokens × median seconds per token likewise, else the elapsed seconds.
 * Each feature is divided by its sum over miners (a zero sum divides by 1), and
 * score = 0.35·compute_units + 0.30·invocation_count + 0.25·unique_chute_count +
 * 0.10·bounty_count. Hotkeys not on the metagraph get no weight (no renormalisation);
 * weights are scaled so the largest is 65535, rounded half to even as Python's `round`,
 * and zeros dropped, as fiber's `set_node_weights` does; version key 69420.
 *
 * Departures, on purpose: the window is [H − 7 days, H) for the hour H the run starts in
 * (upstream: the last 7 × 24 h up to the second), so a run covers exactly the hours its
 * cited exports cover; the medians are taken over the same window (upstream: over all
 * history), so a run is a function of its window alone and its cost is bounded.
 */
import { and, asc, count, desc, eq, gte, lt, type SQL, sql } from "drizzle-orm";
import type { Chain, Neuron, WeightSubmission } from "../chain/types.ts";
import type { Database } from "../db/client.ts";
import { exportManifests, minerScores, type SCORE_OUTCOMES, scoreRuns } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";
import { HOUR_MS } from "../exports/manifest.ts";

export const SCORING_WINDOW_MS = 7 * 24 * HOUR_MS;

export const FEATURE_WEIGHTS = {
  compute_units: 0.35,
  invocation_count: 0.3,
  unique_chute_count: 0.25,
  bounty_count: 0.1,
} as const;

export type Feature = keyof typeof FEATURE_WEIGHTS;
const FEATURES = Object.keys(FEATURE_WEIGHTS) as Feature[];

/** Upstream's `set_weights` version key. */
export const WEIGHTS_VERSION_KEY = 69420;
/** Blocks between weight submissions when the chain does not say (upstream's 150). */
export const DEFAULT_WEIGHTS_INTERVAL_BLOCKS = 150;
const U16_MAX = 65_535;

export type ScoreOutcome = (typeof SCORE_OUTCOMES)[number];

export interface MinerFeatures {
  minerHotkey: string;
  compute_units: number;
  invocation_count: number;
  unique_chute_count: number;
  bounty_count: number;
}

export interface ScoredMiner extends MinerFeatures {
  normalized: Record<Feature, number>;
  score: number;
}

export interface ScoringWindow {
  start: Date;
  end: Date;
}

/** The 7-day window ending at the start of the hour that holds `at`. */
export function scoringWindow(at: Date): ScoringWindow {
  const end = Math.floor(at.getTime() / HOUR_MS) * HOUR_MS;
  return { start: new Date(end - SCORING_WINDOW_MS), end: new Date(end) };
}

const elapsed = sql`extract(epoch from (i.completed_at - i.started_at))::float8`;
const steps = sql`(i.metrics->>'steps')::float8`;
const tokens = sql`(i.metrics->>'tokens')::float8`;

/** The raw features of every miner with at least one counted attempt in the window. */
export async function minerFeatures(db: Database, window: ScoringWindow): Promise<MinerFeatures[]> {
  const inWindow = (alias: SQL) =>
    sql`${alias}.started_at >= ${window.start.toISOString()}::timestamptz
      and ${alias}.started_at < ${window.end.toISOString()}::timestamptz
      and ${alias}.error_message is null and ${alias}.completed_at is not null`;
  const result = await db.execute<{
    miner_hotkey: string;
    compute_units: number;
    invocation_count: number;
    unique_chute_count: number;
    bounty_count: number;
  }>(sql`
    with rates as (
      select i.chute_id,
        percentile_cont(0.5) within group (order by ${elapsed} / ${steps}) filter (where ${steps} > 0)
          as median_step_time,
        percentile_cont(0.5) within group (order by ${elapsed} / ${tokens}) filter (where ${tokens} > 0)
          as median_token_time
      from invocations i
      where ${inWindow(sql`i`)} and (${steps} > 0 or ${tokens} > 0)
      group by i.chute_id
    )
    select i.miner_hotkey,
      sum(i.bounty + i.compute_multiplier * case
        when ${steps} > 0 and r.median_step_time is not null and ${elapsed} > ${steps} * r.median_step_time
          then ${steps} * r.median_step_time
        when ${tokens} > 0 and r.median_token_time is not null and ${elapsed} > ${tokens} * r.median_token_time
          then ${tokens} * r.median_token_time
        else ${elapsed}
      end)::float8 as compute_units,
      count(*)::int as invocation_count,
      count(distinct i.chute_id)::int as unique_chute_count,
      (count(*) filter (where i.bounty > 0))::int as bounty_count
    from invocations i left join rates r on r.chute_id = i.chute_id
    where ${inWindow(sql`i`)} and i.miner_uid > 0
    group by i.miner_hotkey
    order by i.miner_hotkey`);
  return result.rows.map((row) => ({
    minerHotkey: row.miner_hotkey,
    compute_units: Number(row.compute_units),
    invocation_count: Number(row.invocation_count),
    unique_chute_count: Number(row.unique_chute_count),
    bounty_count: Number(row.bounty_count),
  }));
}

/** Normalises each feature by its sum and weighs them (pure). */
export function scoreMiners(miners: MinerFeatures[]): ScoredMiner[] {
  const sums = Object.fromEntries(FEATURES.map((f) => [f, miners.reduce((total, m) => total + m[f], 0)])) as Record<
    Feature,
    number
  >;
  return miners.map((miner) => {
    const normalized = Object.fromEntries(FEATURES.map((f) => [f, miner[f] / (sums[f] || 1)])) as Record<
      Feature,
      number
    >;
    const score = FEATURES.reduce((total, f) => total + FEATURE_WEIGHTS[f] * normalized[f], 0);
    return { ...miner, normalized, score };
  });
}

/** Python's `round()` of a float: to the nearest integer, ties to even. */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

export interface WeightVector {
  uids: number[];
  weights: number[];
  /** hotkey → its uid on the metagraph (absent: not registered, no weight). */
  uidOf: Map<string, number>;
  /** hotkey → the u16 weight it was given (0 when dropped). */
  weightOf: Map<string, number>;
}

/** fiber's `set_node_weights` conversion: max → 65535, rounded, zeros dropped, by uid (pure). */
export function weightVector(scored: ScoredMiner[], neurons: Pick<Neuron, "hotkey" | "uid">[]): WeightVector {
  const uidOf = new Map(neurons.map((n) => [n.hotkey, n.uid]));
  const registered = scored.filter((m) => uidOf.has(m.minerHotkey) && m.score > 0);
  const max = Math.max(0, ...registered.map((m) => m.score));
  const weightOf = new Map<string, number>();
  const pairs: [number, number][] = [];
  if (max > 0) {
    const factor = U16_MAX / max;
    for (const miner of registered) {
      const weight = roundHalfEven(miner.score * factor);
      weightOf.set(miner.minerHotkey, weight);
      if (weight > 0) pairs.push([uidOf.get(miner.minerHotkey) as number, weight]);
    }
  }
  pairs.sort((a, b) => a[0] - b[0]);
  return { uids: pairs.map(([uid]) => uid), weights: pairs.map(([, weight]) => weight), uidOf, weightOf };
}

export interface ExportHash {
  hour_start: string;
  key: string;
  sha256: string;
  merkle_root: string;
  row_count: number;
}

/** The exports of the hours in the window, oldest first: what a run's inputs can be checked against. */
export async function exportHashes(db: AnyDatabase, window: ScoringWindow): Promise<ExportHash[]> {
  const rows = await db
    .select()
    .from(exportManifests)
    .where(and(gte(exportManifests.hourStart, window.start), lt(exportManifests.hourStart, window.end)))
    .orderBy(asc(exportManifests.hourStart));
  return rows.map((row) => ({
    hour_start: row.hourStart.toISOString(),
    key: row.csvKey,
    sha256: row.sha256,
    merkle_root: row.merkleRoot,
    row_count: row.rowCount,
  }));
}

export interface ScoringDeps {
  db: Database;
  chain: Pick<Chain, "mode" | "getNeurons" | "getValidatorState" | "setWeights">;
  netuid: number;
}

export interface ScoreRunResult {
  runId: string;
  window: ScoringWindow;
  miners: number;
  outcome: ScoreOutcome;
  /** Why nothing was submitted, or what failed. */
  reason: string | null;
  submission: WeightSubmission | null;
}

type Decision = { outcome: ScoreOutcome; reason: string | null; submission: WeightSubmission | null };

async function submitWeights(deps: ScoringDeps, vector: WeightVector): Promise<Decision> {
  if (vector.uids.length === 0) {
    return { outcome: "skipped", reason: "no registered miner has a positive score", submission: null };
  }
  try {
    const state = await deps.chain.getValidatorState(deps.netuid);
    if (state.uid === null) {
      return {
        outcome: "skipped",
        reason: `validator hotkey ${state.hotkey} is not registered on netuid ${deps.netuid}`,
        submission: null,
      };
    }
    const interval = state.weightsRateLimit ?? DEFAULT_WEIGHTS_INTERVAL_BLOCKS;
    const since = state.currentBlock - (state.lastUpdate ?? 0);
    if (since < interval) {
      return {
        outcome: "skipped",
        reason: `too soon: ${since} blocks since the last weights; the chain allows one every ${interval}`,
        submission: null,
      };
    }
    const submission = await deps.chain.setWeights({
      netuid: deps.netuid,
      uids: vector.uids,
      weights: vector.weights,
      versionKey: WEIGHTS_VERSION_KEY,
    });
    return { outcome: deps.chain.mode === "rpc" ? "submitted" : "recorded", reason: null, submission };
  } catch (error) {
    return { outcome: "failed", reason: error instanceof Error ? error.message : String(error), submission: null };
  }
}

/**
 * One scoring run over the window ending at `windowEnd`'s hour: features, scores and
 * weights, the submission (or why there was none), stored together.
 */
export async function runScoring(deps: ScoringDeps, at: Date): Promise<ScoreRunResult> {
  const window = scoringWindow(at);
  const scored = scoreMiners(await minerFeatures(deps.db, window));
  const vector = weightVector(scored, await deps.chain.getNeurons(deps.netuid));
  const hashes = await exportHashes(deps.db, window);
  const decision = await submitWeights(deps, vector);
  const runId = crypto.randomUUID();
  await deps.db.transaction(async (tx) => {
    await tx.insert(scoreRuns).values({
      runId,
      netuid: deps.netuid,
      windowStart: window.start,
      windowEnd: window.end,
      exportHashes: hashes,
      submitted: decision.outcome === "submitted" || decision.outcome === "recorded",
      outcome: decision.outcome,
      submission: decision.submission,
      error: decision.reason,
    });
    for (let i = 0; i < scored.length; i += 500) {
      await tx.insert(minerScores).values(
        scored.slice(i, i + 500).map((m) => ({
          runId,
          minerHotkey: m.minerHotkey,
          uid: vector.uidOf.get(m.minerHotkey) ?? null,
          computeUnits: m.compute_units,
          invocationCount: m.invocation_count,
          uniqueChuteCount: m.unique_chute_count,
          bountyCount: m.bounty_count,
          score: m.score,
          weight: vector.weightOf.get(m.minerHotkey) ?? 0,
        })),
      );
    }
  });
  return { runId, window, miners: scored.length, ...decision };
}

// ---------------------------------------------------------------------------------------
// Reading runs back (routes)
// ---------------------------------------------------------------------------------------

export type ScoreRun = typeof scoreRuns.$inferSelect;

export async function findScoreRun(db: AnyDatabase, netuid: number, runId?: string): Promise<ScoreRun | null> {
  const [run] = await db
    .select()
    .from(scoreRuns)
    .where(runId ? and(eq(scoreRuns.netuid, netuid), eq(scoreRuns.runId, runId)) : eq(scoreRuns.netuid, netuid))
    .orderBy(desc(scoreRuns.createdAt))
    .limit(1);
  return run ?? null;
}

export async function listScoreRuns(
  db: AnyDatabase,
  netuid: number,
  page: { offset: number; limit: number },
): Promise<{ total: number; runs: (ScoreRun & { miners: number })[] }> {
  const [total] = await db.select({ n: count() }).from(scoreRuns).where(eq(scoreRuns.netuid, netuid));
  const runs = await db
    .select({
      run: scoreRuns,
      // Qualified by hand: drizzle leaves column names bare inside a subquery.
      miners: sql<number>`(select count(*)::int from miner_scores m where m.run_id = score_runs.run_id)`,
    })
    .from(scoreRuns)
    .where(eq(scoreRuns.netuid, netuid))
    .orderBy(desc(scoreRuns.createdAt))
    .offset(page.offset)
    .limit(page.limit);
  return { total: total?.n ?? 0, runs: runs.map((r) => ({ ...r.run, miners: Number(r.miners) })) };
}

export interface MinerScorePage {
  total: number;
  totals: Record<Feature, number>;
  miners: (typeof minerScores.$inferSelect)[];
}

/** A run's miners, best score first, with the feature sums their normalised values divide by. */
export async function runMiners(
  db: AnyDatabase,
  runId: string,
  page: { offset: number; limit: number; hotkey?: string },
): Promise<MinerScorePage> {
  const [sums] = await db
    .select({
      miners: count(),
      compute_units: sql<number>`coalesce(sum(${minerScores.computeUnits}), 0)::float8`,
      invocation_count: sql<number>`coalesce(sum(${minerScores.invocationCount}), 0)::float8`,
      unique_chute_count: sql<number>`coalesce(sum(${minerScores.uniqueChuteCount}), 0)::float8`,
      bounty_count: sql<number>`coalesce(sum(${minerScores.bountyCount}), 0)::float8`,
    })
    .from(minerScores)
    .where(eq(minerScores.runId, runId));
  const filter = page.hotkey
    ? and(eq(minerScores.runId, runId), eq(minerScores.minerHotkey, page.hotkey))
    : eq(minerScores.runId, runId);
  const miners = await db
    .select()
    .from(minerScores)
    .where(filter)
    .orderBy(desc(minerScores.score), asc(minerScores.minerHotkey))
    .offset(page.offset)
    .limit(page.limit);
  const totals = Object.fromEntries(FEATURES.map((f) => [f, Number(sums?.[f] ?? 0)])) as Record<Feature, number>;
  return { total: page.hotkey ? miners.length : Number(sums?.miners ?? 0), totals, miners };
}
