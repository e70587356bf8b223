/**
 * @module The GPU job queue in Postgres (`gpu_jobs`): enqueue, claim, heartbeat, result,
 * and the lazy transitions that re-queue a job whose agent died and expire late ones.
 *
 * States: queued → running → succeeded | failed; queued or running → expired once
 * `deadline_at` passes. A running job whose lease lapses (no heartbeat: the agent died)
 * goes back to queued, or to failed once `max_attempts` claims have lapsed. Claims take
 * the oldest eligible row with `FOR UPDATE SKIP LOCKED`, so concurrent agents never get
 * the same job. Every time comparison uses `deps.now()`, not the database clock, so one
 * clock rules and tests can move it.
 */
import { and, eq, inArray, lt, lte, or, type SQL, sql } from "drizzle-orm";
import { gpuAgents, gpuJobs } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";
import { ApiError } from "../lib/errors.ts";
import { check } from "../lib/validation.ts";
import type { JobResult } from "../schemas/gpu-agents.ts";
import { type GpuOp, opPayloadSchemas, opResultSchemas } from "../schemas/gpu-proof.ts";

export type GpuJob = typeof gpuJobs.$inferSelect;
export type GpuJobStatus = GpuJob["status"];

/** What the queue needs: a database (the Worker's, or node-postgres in scripts and tests) and the clock. */
export interface QueueDeps {
  db: AnyDatabase;
  now(): Date;
}

export const TERMINAL: readonly GpuJobStatus[] = ["succeeded", "failed", "expired"];

export interface EnqueueOptions {
  /** Idempotency: enqueuing an existing id returns that job unchanged. */
  jobId?: string;
  /** From now; the job expires if not finished by then (default 10 minutes). */
  deadlineMs?: number;
  /** How long a claim or heartbeat holds the job (default 60 s). */
  leaseMs?: number;
  maxAttempts?: number;
}

const DEFAULT_DEADLINE_MS = 10 * 60_000;
const DEFAULT_LEASE_MS = 60_000;

const agentEnabled = (agentId: string) =>
  sql`exists (select 1 from ${gpuAgents} where ${gpuAgents.agentId} = ${agentId} and not ${gpuAgents.disabled})`;
const at = (date: Date) => sql`${date.toISOString()}::timestamptz`;
const plusLease = (now: Date) => sql`${at(now)} + ${gpuJobs.leaseMs} * interval '1 millisecond'`;

/**
 * Queues a GPU operation for the agents. The payload is validated against the op's schema
 * here, so an agent never receives a job it cannot parse.
 */
export async function enqueueGpuJob(
  deps: QueueDeps,
  op: GpuOp,
  payload: unknown,
  options: EnqueueOptions = {},
): Promise<GpuJob> {
  check(opPayloadSchemas[op], payload, "payload");
  const now = deps.now();
  const jobId = options.jobId ?? crypto.randomUUID();
  const [created] = await deps.db
    .insert(gpuJobs)
    .values({
      jobId,
      op,
      payload,
      leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
      maxAttempts: options.maxAttempts ?? 3,
      deadlineAt: new Date(now.getTime() + (options.deadlineMs ?? DEFAULT_DEADLINE_MS)),
      createdAt: now,
      updatedAt: now,
    })
    .onConflictDoNothing()
    .returning();
  if (created) return created;
  const existing = await getGpuJob(deps, jobId);
  if (existing.op !== op) throw new ApiError("conflict", `Job ${jobId} exists with another op.`);
  return existing;
}

/** Applies the time-driven transitions (expiry, lapsed leases) to every job matching `scope`. */
export async function reapGpuJobs(db: AnyDatabase, now: Date, scope?: SQL): Promise<void> {
  const live = inArray(gpuJobs.status, ["queued", "running"]);
  await db
    .update(gpuJobs)
    .set({
      status: "expired",
      error: "the deadline passed before the job finished",
      leaseExpiresAt: null,
      completedAt: now,
      updatedAt: now,
    })
    .where(and(live, lte(gpuJobs.deadlineAt, now), scope));
  const lapsed = and(eq(gpuJobs.status, "running"), lt(gpuJobs.leaseExpiresAt, now), scope);
  await db
    .update(gpuJobs)
    .set({
      status: "failed",
      error: "the lease lapsed on every attempt (the agents running it stopped answering)",
      // No holder any more: a late result from the last one is refused, not taken as a repeat.
      agentId: null,
      leaseExpiresAt: null,
      completedAt: now,
      updatedAt: now,
    })
    .where(and(lapsed, sql`${gpuJobs.attempts} >= ${gpuJobs.maxAttempts}`));
  await db
    .update(gpuJobs)
    .set({ status: "queued", agentId: null, leaseExpiresAt: null, updatedAt: now })
    .where(and(lapsed, lt(gpuJobs.attempts, gpuJobs.maxAttempts)));
}

/** Claims the oldest job this agent can run, or null. Safe under any number of concurrent claimers. */
export async function claimGpuJob(deps: QueueDeps, agentId: string, ops: readonly GpuOp[]): Promise<GpuJob | null> {
  const now = deps.now();
  const eligible = deps.db
    .select({ jobId: gpuJobs.jobId })
    .from(gpuJobs)
    .where(
      and(
        inArray(gpuJobs.op, [...ops]),
        sql`${gpuJobs.deadlineAt} > ${at(now)}`,
        or(
          eq(gpuJobs.status, "queued"),
          and(
            eq(gpuJobs.status, "running"),
            lt(gpuJobs.leaseExpiresAt, now),
            lt(gpuJobs.attempts, gpuJobs.maxAttempts),
          ),
        ),
      ),
    )
    .orderBy(gpuJobs.createdAt)
    .limit(1)
    .for("update", { skipLocked: true });
  const [job] = await deps.db
    .update(gpuJobs)
    .set({
      status: "running",
      agentId,
      attempts: sql`${gpuJobs.attempts} + 1`,
      claimedAt: now,
      leaseExpiresAt: plusLease(now),
      updatedAt: now,
    })
    // A disabled agent claims nothing, even in a long-poll that began before it was disabled.
    .where(and(inArray(gpuJobs.jobId, eligible), agentEnabled(agentId)))
    .returning();
  return job ?? null;
}

/** Extends the lease of a job this agent runs; 409 when it no longer holds it. */
export async function heartbeatGpuJob(deps: QueueDeps, agentId: string, jobId: string): Promise<GpuJob> {
  const now = deps.now();
  const [job] = await deps.db
    .update(gpuJobs)
    .set({ leaseExpiresAt: plusLease(now), updatedAt: now })
    .where(and(eq(gpuJobs.jobId, jobId), eq(gpuJobs.status, "running"), eq(gpuJobs.agentId, agentId)))
    .returning();
  if (!job) throw new ApiError("conflict", `This agent does not hold job ${jobId} (finished, expired or re-queued).`);
  return job;
}

export interface CompletionOutcome {
  job: GpuJob;
  /** The same result had already been recorded: nothing changed. */
  duplicate: boolean;
}

/**
 * Records an agent's signed result. Idempotent on job_id: a repeat of a recorded result
 * answers the recorded job and changes nothing; a result from an agent that no longer
 * holds the job, or after the deadline, is refused.
 */
export async function completeGpuJob(deps: QueueDeps, agentId: string, result: JobResult): Promise<CompletionOutcome> {
  const now = deps.now();
  return deps.db.transaction(async (tx) => {
    const [job] = await tx.select().from(gpuJobs).where(eq(gpuJobs.jobId, result.job_id)).for("update");
    if (!job) throw new ApiError("not_found", `No GPU job ${result.job_id}.`);
    if (job.op !== result.op) throw new ApiError("validation_failed", `Job ${job.jobId} is a ${job.op} job.`);
    if (TERMINAL.includes(job.status)) {
      if (job.agentId === agentId && job.status !== "expired") return { job, duplicate: true };
      throw new ApiError("conflict", `Job ${job.jobId} is already ${job.status}.`);
    }
    if (job.status !== "running" || job.agentId !== agentId) {
      throw new ApiError("conflict", `This agent does not hold job ${job.jobId} (its lease lapsed).`);
    }
    if (job.deadlineAt.getTime() <= now.getTime()) {
      const [expired] = await tx
        .update(gpuJobs)
        .set({ status: "expired", error: "the result arrived after the deadline", completedAt: now, updatedAt: now })
        .where(eq(gpuJobs.jobId, job.jobId))
        .returning();
      return { job: expired ?? job, duplicate: false };
    }
    const ok = result.status === "ok";
    const value = ok ? check(opResultSchemas[job.op as GpuOp], result.result, "body.result") : null;
    const [done] = await tx
      .update(gpuJobs)
      .set({
        status: ok ? "succeeded" : "failed",
        result: ok ? { ...value, timings: result.timings, agent_version: result.agent_version } : null,
        error: ok ? null : (result.error ?? "the agent reported an error without a message"),
        leaseExpiresAt: null,
        completedAt: now,
        updatedAt: now,
      })
      .where(eq(gpuJobs.jobId, job.jobId))
      .returning();
    return { job: done ?? job, duplicate: false };
  });
}

/** A job as it stands now (time-driven transitions applied first). */
export async function getGpuJob(deps: QueueDeps, jobId: string): Promise<GpuJob> {
  await reapGpuJobs(deps.db, deps.now(), eq(gpuJobs.jobId, jobId));
  const [job] = await deps.db.select().from(gpuJobs).where(eq(gpuJobs.jobId, jobId));
  if (!job) throw new ApiError("not_found", `No GPU job ${jobId}.`);
  return job;
}

/** Waits until the job is finished (succeeded, failed or expired) or `timeoutMs` passes. */
export async function awaitGpuJob(
  deps: QueueDeps,
  jobId: string,
  options: { timeoutMs: number; pollMs?: number },
): Promise<GpuJob> {
  const until = Date.now() + options.timeoutMs;
  for (;;) {
    const job = await getGpuJob(deps, jobId);
    if (TERMINAL.includes(job.status) || Date.now() >= until) return job;
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 500));
  }
}
