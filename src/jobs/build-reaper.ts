/**
 * @module Cron job: apply build deadlines and lapsed builder leases even when no builder
 * is left to claim (claims reap too), so a dead builder's image is re-queued or failed
 * within a minute of its lease, and its waiting readers get their `DONE`.
 */
import type { CronJob } from "../cron.ts";
import { settleReaped } from "../services/build-logs.ts";
import { reapBuilds } from "../services/builds.ts";

export const buildReaperJob: CronJob = {
  name: "build-reaper",
  timeoutMs: 30_000,
  async run({ config, deps, log }) {
    const reaped = await reapBuilds(deps);
    await settleReaped({ config, log }, reaped);
    return {
      requeued: reaped.filter((build) => build.outcome === "requeued").length,
      failed: reaped.filter((build) => build.outcome === "failed").length,
    };
  },
};
