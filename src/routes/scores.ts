/**
 * @module Miner scores (public, read-only; `/miner/scores` is upstream HEAD's name):
 * `GET /miner/scores` — a scoring run (the latest, or `?run_id=`) with its per-miner
 * breakdown, best first, paginated (`?hotkey=` for one miner); `GET /miner/scores/runs`
 * — the runs, newest first.
 */
import { Hono } from "hono";
import type { AppEnv } from "../app.ts";
import { ApiError } from "../lib/errors.ts";
import { pageBody, pageSlice } from "../lib/pagination.ts";
import { queryParams } from "../lib/validation.ts";
import { minerScoresQuery, scoreRunsQuery } from "../schemas/scores.ts";
import {
  FEATURE_WEIGHTS,
  type Feature,
  findScoreRun,
  listScoreRuns,
  runMiners,
  type ScoreRun,
  WEIGHTS_VERSION_KEY,
} from "../services/scores.ts";

function runSummary(run: ScoreRun) {
  return {
    run_id: run.runId,
    netuid: run.netuid,
    window_start: run.windowStart.toISOString(),
    window_end: run.windowEnd.toISOString(),
    created_at: run.createdAt.toISOString(),
    outcome: run.outcome,
    reason: run.error,
  };
}

export const scoresRoutes = new Hono<AppEnv>()
  .get("/miner/scores", async (c) => {
    const query = queryParams(c, minerScoresQuery);
    const { db } = c.var.deps;
    const run = await findScoreRun(db, c.var.config.NETUID, query.run_id);
    if (!run) throw new ApiError("not_found", query.run_id ? `No scoring run ${query.run_id}.` : "No scoring run yet.");
    const page = await runMiners(db, run.runId, { ...pageSlice(query), hotkey: query.hotkey });
    const share = (value: number, feature: Feature) => value / (page.totals[feature] || 1);
    return c.json({
      ...runSummary(run),
      submission: run.submission,
      version_key: WEIGHTS_VERSION_KEY,
      feature_weights: FEATURE_WEIGHTS,
      feature_totals: page.totals,
      export_hashes: run.exportHashes,
      ...pageBody(
        query,
        page.total,
        page.miners.map((m) => ({
          miner_hotkey: m.minerHotkey,
          uid: m.uid,
          compute_units: m.computeUnits,
          invocation_count: m.invocationCount,
          unique_chute_count: m.uniqueChuteCount,
          bounty_count: m.bountyCount,
          normalized: {
            compute_units: share(m.computeUnits, "compute_units"),
            invocation_count: share(m.invocationCount, "invocation_count"),
            unique_chute_count: share(m.uniqueChuteCount, "unique_chute_count"),
            bounty_count: share(m.bountyCount, "bounty_count"),
          },
          score: m.score,
          weight: m.weight,
        })),
      ),
    });
  })
  .get("/miner/scores/runs", async (c) => {
    const query = queryParams(c, scoreRunsQuery);
    const { total, runs } = await listScoreRuns(c.var.deps.db, c.var.config.NETUID, pageSlice(query));
    const items = runs.map((run) => ({ ...runSummary(run), miners: run.miners, export_count: exportCount(run) }));
    return c.json(pageBody(query, total, items));
  });

function exportCount(run: ScoreRun): number {
  return Array.isArray(run.exportHashes) ? run.exportHashes.length : 0;
}
