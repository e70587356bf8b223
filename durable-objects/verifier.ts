/**
 * @module The Verifier: one Durable Object per verification (named `nodes:{task_id}` or
 * `instance:{instance_id}`) that runs it from an alarm, so no client request is held open
 * for a multi-step job with minutes-long windows (src/services/verification.ts).
 *
 * - `start` is idempotent: the first call records the job and sets the alarm; later calls
 *   (a miner PATCHing every 5 s) change nothing. The record stays after the job is done,
 *   so a finished verification is never started again by the same name.
 * - The state of the verification itself is in Postgres (node status, instance flags); the
 *   object keeps only `{kind, id, attempts, state}`. An alarm that throws (a database
 *   outage) is retried by the runtime; after `MAX_ATTEMPTS` runs the job is given up with
 *   a clear reason, so nothing stays `verifying` forever.
 */
import { DurableObject } from "cloudflare:workers";
import { configFor } from "../src/env.ts";
import { RequestDeps } from "../src/lib/deps.ts";
import { createLogger, errorFields } from "../src/lib/log.ts";
import { removeInstance } from "../src/services/instances.ts";
import { failNodes } from "../src/services/nodes.ts";
import { type VerificationKind, verifyInstance, verifyNodes } from "../src/services/verification.ts";

export const MAX_ATTEMPTS = 3;

export interface VerifierJob {
  kind: VerificationKind;
  id: string;
  attempts: number;
  state: "queued" | "running" | "done";
  outcome?: string;
}

export class Verifier extends DurableObject<Record<string, unknown>> {
  /** Records the job and schedules it now; false when this object already has one. */
  async start(kind: VerificationKind, id: string): Promise<boolean> {
    const existing = await this.ctx.storage.get<VerifierJob>("job");
    if (existing) return false;
    await this.ctx.storage.put<VerifierJob>("job", { kind, id, attempts: 0, state: "queued" });
    await this.ctx.storage.setAlarm(Date.now());
    return true;
  }

  /** The job as it stands (RPC, for tests and operators). */
  async job(): Promise<VerifierJob | null> {
    return (await this.ctx.storage.get<VerifierJob>("job")) ?? null;
  }

  override async alarm(): Promise<void> {
    const job = await this.ctx.storage.get<VerifierJob>("job");
    if (!job || job.state === "done") return;
    job.attempts += 1;
    job.state = "running";
    await this.ctx.storage.put("job", job);
    const config = configFor(this.env);
    const log = createLogger(config.LOG_LEVEL, { verifier: `${job.kind}:${job.id}`, attempt: job.attempts });
    const deps = new RequestDeps(config);
    const plane = { db: deps.db, config, log, now: () => new Date() };
    try {
      if (job.attempts > MAX_ATTEMPTS) {
        const reason = `verification was interrupted ${MAX_ATTEMPTS} times (a validator fault); try again`;
        if (job.kind === "nodes") await failNodes(plane, job.id, reason);
        else await removeInstance(plane, job.id, `verification failed: ${reason}`);
        job.outcome = "given up";
      } else {
        job.outcome = job.kind === "nodes" ? await verifyNodes(plane, job.id) : await verifyInstance(plane, job.id);
      }
      job.state = "done";
      await this.ctx.storage.put("job", job);
    } catch (error) {
      log.warn("verification attempt failed; the alarm will retry", errorFields(error));
      throw error;
    } finally {
      await deps.close().catch(() => {});
    }
  }
}
