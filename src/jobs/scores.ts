/**
 * @module Cron job (minute 5 of every hour, after the minute-1 export): score miners over
 * the 7 days before this hour and set weights when the chain's rate limit allows
 * (src/services/scores.ts). Hourly because the window moves by whole hours; the chain
 * allows weights every ~100–150 blocks (20–30 min), so every run may submit.
 */
import { openChain } from "../chain/index.ts";
import type { CronJob } from "../cron.ts";
import { runScoring } from "../services/scores.ts";

export const scoresJob: CronJob = {
  name: "scores",
  timeoutMs: 5 * 60_000,
  async run({ config, deps, scheduledTime }) {
    const chain = await openChain(config);
    try {
      const result = await runScoring({ db: deps.db, chain, netuid: config.NETUID }, scheduledTime);
      return {
        run_id: result.runId,
        window_end: result.window.end.toISOString(),
        miners: result.miners,
        outcome: result.outcome,
        reason: result.reason,
        extrinsic: result.submission?.extrinsicHash ?? null,
        chain: chain.mode,
      };
    } finally {
      await chain.close();
    }
  },
};
