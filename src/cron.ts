/**
 * @module The Worker's cron entry point: a table from cron expression to the jobs that
 * run on it, and the runner behind the `scheduled` handler.
 *
 * To add a job: write a `CronJob` in src/jobs/, list it under its expression here, and
 * put the expression in `[triggers] crons` of every environment in wrangler.toml (a
 * unit test checks both agree). Each job gets its own dependencies (database pool),
 * a time limit whose expiry aborts its signal, and one structured log line; jobs of
 * one expression run concurrently and a failing job does not stop the others.
 */
import type { Config } from "./env.ts";
import { buildReaperJob } from "./jobs/build-reaper.ts";
import { exportInvocationsJob } from "./jobs/export-invocations.ts";
import { metagraphSyncJob } from "./jobs/metagraph-sync.ts";
import { minerHealthJob } from "./jobs/miner-health.ts";
import { paymentsJob } from "./jobs/payments.ts";
import { scoresJob } from "./jobs/scores.ts";
import { type Deps, RequestDeps } from "./lib/deps.ts";
import { errorFields, type Logger } from "./lib/log.ts";
import { withTimeout } from "./lib/time.ts";

export interface JobContext {
  config: Config;
  deps: Deps;
  log: Logger;
  /** Aborted when the job's time limit expires: stop and roll back. */
  signal: AbortSignal;
  scheduledTime: Date;
}

export interface CronJob {
  name: string;
  timeoutMs: number;
  /** Returns fields for the job's log line. */
  run(context: JobContext): Promise<Record<string, unknown>>;
}

const CLOSE_TIMEOUT_MS = 2_000;

export const CRON_JOBS: Record<string, CronJob[]> = {
  "* * * * *": [metagraphSyncJob, buildReaperJob, paymentsJob, minerHealthJob],
  "1 * * * *": [exportInvocationsJob],
  "5 * * * *": [scoresJob],
};

export interface JobOutcome {
  job: string;
  ok: boolean;
  durationMs: number;
  error?: string;
}

export interface CronRun {
  cron: string;
  scheduledTime: Date;
  config: Config;
  log: Logger;
  /** Where closing each job's database pool goes (the invocation's `waitUntil`). */
  waitUntil(promise: Promise<unknown>): void;
}

export async function runCronJobs(run: CronRun, jobs: Record<string, CronJob[]> = CRON_JOBS): Promise<JobOutcome[]> {
  const { cron, log } = run;
  const due = jobs[cron];
  if (!due) {
    log.warn("no cron jobs for this schedule", { cron });
    return [];
  }
  return Promise.all(due.map((job) => runJob(job, run, log.child({ cron, job: job.name }))));
}

async function runJob(job: CronJob, { scheduledTime, config, waitUntil }: CronRun, log: Logger): Promise<JobOutcome> {
  const started = Date.now();
  const deps = new RequestDeps(config);
  const abort = new AbortController();
  try {
    const run = job.run({ config, deps, log, signal: abort.signal, scheduledTime });
    const fields = await withTimeout(run, job.timeoutMs, `cron job ${job.name}`).catch((error: unknown) => {
      abort.abort(error);
      throw error;
    });
    const durationMs = Date.now() - started;
    log.info("cron job done", { ...fields, duration_ms: durationMs });
    return { job: job.name, ok: true, durationMs };
  } catch (error) {
    const durationMs = Date.now() - started;
    log.error("cron job failed", { ...errorFields(error), duration_ms: durationMs });
    return { job: job.name, ok: false, durationMs, error: error instanceof Error ? error.message : String(error) };
  } finally {
    // Bounded: the invocation is complete only when this settles, and a connection the
    // server never closes (PGlite behind the local ws proxy does not) would keep it open.
    // The runtime tears down whatever is left when the invocation ends.
    waitUntil(
      withTimeout(deps.close(), CLOSE_TIMEOUT_MS, "closing the database pool").catch((error) =>
        log.warn("closing db failed", errorFields(error)),
      ),
    );
  }
}
