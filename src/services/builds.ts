/**
 * @module The image build queue (`image_builds`, one job per image) and the image state it
 * drives: `pending` → `building` → `built` | `error` (docs/protocols.md, "Image builder").
 *
 * - A job is queued with the upload, in its transaction (`enqueueBuild`).
 * - A claim takes the oldest queued job (`FOR UPDATE SKIP LOCKED`: concurrent builders never
 *   share one), leases it for `BUILD_LEASE_MS`, gives it `BUILD_TIMEOUT_S` to finish, marks
 *   the image `building`, and mints a push token: the one credential that lets this attempt
 *   push its own repository `{username}/{name}` through the registry front (only its SHA-256
 *   is stored, and it dies with the attempt).
 * - A lapsed lease (the builder died) puts the job back in the queue and the image back to
 *   `pending`, until `max_attempts` claims have lapsed: then the image is `error`. A passed
 *   deadline is `error` at once. These transitions are applied lazily (every claim, and the
 *   every-minute cron), and reported to the caller so it can close the build's log and tell
 *   miners.
 * - Only the holder's successful result marks an image `built`: nothing half-built is.
 * Every time comparison uses `deps.now()`, so one clock rules and tests can move it.
 */
import { and, eq, inArray, lt, lte, type SQL, sql } from "drizzle-orm";
import { builders, imageBuilds, images, users } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";
import { bytesEqual, toHex, utf8 } from "../lib/bytes.ts";
import { ApiError } from "../lib/errors.ts";

export interface BuildDeps {
  db: AnyDatabase;
  now(): Date;
}

export interface BuildSettings {
  leaseMs: number;
  timeoutS: number;
  maxAttempts: number;
}

/** Where an image's build lives: its owner and repository. */
export interface BuildTarget {
  imageId: string;
  userId: string;
  username: string;
  name: string;
  tag: string;
}

export interface ClaimedBuild extends BuildTarget {
  attempt: number;
  leaseMs: number;
  leaseExpiresAt: Date;
  deadlineAt: Date;
  /** Shown once, to the claiming builder. */
  pushToken: string;
}

/** A job the reaper moved: back to the queue, or failed for good. */
export interface ReapedBuild extends BuildTarget {
  outcome: "requeued" | "failed";
  message: string;
}

/**
 * The registry repository of an image: `{username}/{name}`, lower-cased because OCI
 * repository names must be (image names already are; usernames may not be).
 */
export const repositoryOf = (target: Pick<BuildTarget, "username" | "name">) =>
  `${target.username.toLowerCase()}/${target.name}`;

const at = (date: Date) => sql`${date.toISOString()}::timestamptz`;
const PUSH_TOKEN = /^cbt_([0-9a-f]{32})_([0-9a-f]{64})$/;

async function sha256Hex(text: string): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(utf8(text)))));
}

/** Queues the build of a freshly uploaded image (inside the upload's transaction). */
export async function enqueueBuild(db: AnyDatabase, imageId: string, maxAttempts: number): Promise<void> {
  await db.insert(imageBuilds).values({ imageId, maxAttempts }).onConflictDoNothing();
}

const targetColumns = {
  imageId: images.imageId,
  userId: images.userId,
  username: users.username,
  name: images.name,
  tag: images.tag,
};

async function targetsOf(db: AnyDatabase, imageIds: string[]): Promise<Map<string, BuildTarget>> {
  if (imageIds.length === 0) return new Map();
  const rows = await db
    .select(targetColumns)
    .from(images)
    .innerJoin(users, eq(users.userId, images.userId))
    .where(inArray(images.imageId, imageIds));
  return new Map(rows.map((row) => [row.imageId, row]));
}

/**
 * Applies the time-driven transitions (deadlines, lapsed leases) to running jobs, all of
 * them or the one of `imageId`, and returns what changed.
 */
export async function reapBuilds(deps: BuildDeps, imageId?: string): Promise<ReapedBuild[]> {
  const now = deps.now();
  const scope = imageId ? eq(imageBuilds.imageId, imageId) : undefined;
  return deps.db.transaction(async (tx) => {
    const running = and(eq(imageBuilds.status, "running"), scope);
    const late = await tx
      .update(imageBuilds)
      .set({ status: "failed", leaseExpiresAt: null, pushTokenHash: null, completedAt: now, updatedAt: now })
      .where(and(running, lte(imageBuilds.deadlineAt, now)))
      .returning({
        imageId: imageBuilds.imageId,
        claimedAt: imageBuilds.claimedAt,
        deadlineAt: imageBuilds.deadlineAt,
      });
    const lapsed = and(running, lt(imageBuilds.leaseExpiresAt, now));
    const abandoned = await tx
      .update(imageBuilds)
      .set({
        status: "failed",
        builderId: null,
        leaseExpiresAt: null,
        pushTokenHash: null,
        completedAt: now,
        updatedAt: now,
      })
      .where(and(lapsed, sql`${imageBuilds.attempts} >= ${imageBuilds.maxAttempts}`))
      .returning({ imageId: imageBuilds.imageId, attempts: imageBuilds.attempts });
    const requeued = await tx
      .update(imageBuilds)
      .set({ status: "queued", builderId: null, leaseExpiresAt: null, pushTokenHash: null, updatedAt: now })
      .where(and(lapsed, lt(imageBuilds.attempts, imageBuilds.maxAttempts)))
      .returning({ imageId: imageBuilds.imageId, attempts: imageBuilds.attempts });

    const failures = new Map<string, string>();
    for (const job of late) {
      const seconds = job.claimedAt && job.deadlineAt ? (job.deadlineAt.getTime() - job.claimedAt.getTime()) / 1000 : 0;
      failures.set(job.imageId, `the build timed out: it did not finish within ${Math.round(seconds)} s`);
    }
    for (const job of abandoned) {
      failures.set(
        job.imageId,
        `the build was abandoned: its builder stopped answering (lease lapsed on all ${job.attempts} attempts)`,
      );
    }
    for (const [id, message] of failures) {
      await tx.update(imageBuilds).set({ error: message }).where(eq(imageBuilds.imageId, id));
      await tx
        .update(images)
        .set({ status: "error", buildError: message, buildCompletedAt: now })
        .where(eq(images.imageId, id));
    }
    const requeuedIds = requeued.map((job) => job.imageId);
    if (requeuedIds.length > 0) {
      await tx.update(images).set({ status: "pending" }).where(inArray(images.imageId, requeuedIds));
    }
    const targets = await targetsOf(tx, [...failures.keys(), ...requeuedIds]);
    const reaped: ReapedBuild[] = [];
    for (const [id, message] of failures) {
      const target = targets.get(id);
      if (target) reaped.push({ ...target, outcome: "failed", message });
    }
    for (const job of requeued) {
      const target = targets.get(job.imageId);
      const message = `the builder stopped answering (lease lapsed); the build is queued again (attempt ${job.attempts} of the allowed ones failed)`;
      if (target) reaped.push({ ...target, outcome: "requeued", message });
    }
    return reaped;
  });
}

/** Claims the oldest queued build for this builder, or null. Safe under concurrent claimers. */
export async function claimBuild(
  deps: BuildDeps,
  builderId: string,
  settings: BuildSettings,
): Promise<ClaimedBuild | null> {
  const now = deps.now();
  const secret = toHex(crypto.getRandomValues(new Uint8Array(32)));
  return deps.db.transaction(async (tx) => {
    const [candidate] = await tx
      .select({ imageId: imageBuilds.imageId })
      .from(imageBuilds)
      .where(eq(imageBuilds.status, "queued"))
      .orderBy(imageBuilds.createdAt)
      .limit(1)
      .for("update", { skipLocked: true });
    if (!candidate) return null;
    const pushToken = `cbt_${candidate.imageId.replaceAll("-", "")}_${secret}`;
    const leaseExpiresAt = new Date(now.getTime() + settings.leaseMs);
    const deadlineAt = new Date(now.getTime() + settings.timeoutS * 1000);
    const [job] = await tx
      .update(imageBuilds)
      .set({
        status: "running",
        builderId,
        attempts: sql`${imageBuilds.attempts} + 1`,
        leaseMs: settings.leaseMs,
        leaseExpiresAt,
        deadlineAt,
        pushTokenHash: await sha256Hex(pushToken),
        claimedAt: now,
        updatedAt: now,
      })
      // A disabled builder claims nothing, even in a long-poll that began before it was disabled.
      .where(
        and(
          eq(imageBuilds.imageId, candidate.imageId),
          sql`exists (select 1 from ${builders} where ${builders.builderId} = ${builderId} and not ${builders.disabled})`,
        ),
      )
      .returning({ attempts: imageBuilds.attempts });
    if (!job) return null;
    await tx
      .update(images)
      .set({ status: "building", buildStartedAt: now, buildCompletedAt: null, buildError: null })
      .where(eq(images.imageId, candidate.imageId));
    const target = (await targetsOf(tx, [candidate.imageId])).get(candidate.imageId);
    if (!target) throw new Error(`image ${candidate.imageId} has a build job but no row`);
    return { ...target, attempt: job.attempts, leaseMs: settings.leaseMs, leaseExpiresAt, deadlineAt, pushToken };
  });
}

/** The build of `imageId` while it runs under a live lease (and `also`), with its target. */
function runningBuild(deps: BuildDeps, imageId: string, also?: SQL) {
  return deps.db
    .select({ ...targetColumns, attempt: imageBuilds.attempts, pushTokenHash: imageBuilds.pushTokenHash })
    .from(imageBuilds)
    .innerJoin(images, eq(images.imageId, imageBuilds.imageId))
    .innerJoin(users, eq(users.userId, images.userId))
    .where(
      and(
        eq(imageBuilds.imageId, imageId),
        eq(imageBuilds.status, "running"),
        sql`${imageBuilds.leaseExpiresAt} >= ${at(deps.now())}`,
        also,
      ),
    );
}

/** The running build this builder holds, with its target; 409 when it holds no such build. */
export async function heldBuild(
  deps: BuildDeps,
  builderId: string,
  imageId: string,
): Promise<BuildTarget & { attempt: number }> {
  const [row] = await runningBuild(deps, imageId, eq(imageBuilds.builderId, builderId));
  if (!row) throw notHolder(imageId);
  const { pushTokenHash: _hash, ...held } = row;
  return held;
}

const notHolder = (imageId: string) =>
  new ApiError(
    "conflict",
    `This builder does not hold the build of image ${imageId} (finished, timed out or re-queued).`,
  );

/** Extends the lease of a build this builder runs; 409 when it no longer holds it. */
export async function heartbeatBuild(deps: BuildDeps, builderId: string, imageId: string): Promise<Date> {
  const now = deps.now();
  const [job] = await deps.db
    .update(imageBuilds)
    .set({ leaseExpiresAt: sql`${at(now)} + ${imageBuilds.leaseMs} * interval '1 millisecond'`, updatedAt: now })
    .where(
      and(
        eq(imageBuilds.imageId, imageId),
        eq(imageBuilds.status, "running"),
        eq(imageBuilds.builderId, builderId),
        sql`${imageBuilds.leaseExpiresAt} >= ${at(now)}`,
        sql`${imageBuilds.deadlineAt} > ${at(now)}`,
      ),
    )
    .returning({ leaseExpiresAt: imageBuilds.leaseExpiresAt });
  if (!job?.leaseExpiresAt) throw notHolder(imageId);
  return job.leaseExpiresAt;
}

export interface BuildResult {
  status: "built" | "error";
  /** For errors: what failed, shown to the developer as `error: {message}`. */
  error?: string;
}

export interface FinishedBuild extends BuildTarget {
  status: "built" | "error";
  message: string;
  /** The same result had already been recorded: nothing changed. */
  duplicate: boolean;
}

/**
 * Records the holder's result: `built` (only after its push succeeded) or `error`. A
 * repeat by the same builder answers the recorded outcome; anything from a builder that
 * no longer holds the build, or after its deadline, is refused (the reaper fails it).
 */
export async function finishBuild(
  deps: BuildDeps,
  builderId: string,
  imageId: string,
  result: BuildResult,
): Promise<FinishedBuild> {
  const now = deps.now();
  return deps.db.transaction(async (tx) => {
    const [job] = await tx.select().from(imageBuilds).where(eq(imageBuilds.imageId, imageId)).for("update");
    if (!job) throw new ApiError("not_found", `No build of image ${imageId}.`);
    const target = (await targetsOf(tx, [imageId])).get(imageId);
    if (!target) throw new ApiError("not_found", `No image ${imageId}.`);
    if (job.status === "succeeded" || job.status === "failed") {
      if (job.builderId === builderId) {
        const status = job.status === "succeeded" ? "built" : "error";
        return { ...target, status, message: job.error ?? "built and pushed", duplicate: true };
      }
      throw new ApiError("conflict", `The build of image ${imageId} is already over.`);
    }
    if (
      job.status !== "running" ||
      job.builderId !== builderId ||
      (job.leaseExpiresAt?.getTime() ?? 0) < now.getTime()
    ) {
      throw notHolder(imageId);
    }
    if ((job.deadlineAt?.getTime() ?? 0) <= now.getTime()) {
      throw new ApiError("gone", `The build of image ${imageId} passed its deadline; it is failed as timed out.`);
    }
    const built = result.status === "built";
    const message = built ? "built and pushed" : (result.error ?? "the builder reported an error without a message");
    await tx
      .update(imageBuilds)
      .set({
        status: built ? "succeeded" : "failed",
        error: built ? null : message,
        leaseExpiresAt: null,
        pushTokenHash: null,
        completedAt: now,
        updatedAt: now,
      })
      .where(eq(imageBuilds.imageId, imageId));
    await tx
      .update(images)
      .set({ status: built ? "built" : "error", buildError: built ? null : message, buildCompletedAt: now })
      .where(eq(images.imageId, imageId));
    return { ...target, status: result.status, message, duplicate: false };
  });
}

/**
 * The repository a registry push token may push to: that of the running attempt it was
 * minted for, while its lease holds; null for anything else.
 */
export async function pushGrant(
  deps: BuildDeps,
  token: string,
): Promise<{ imageId: string; repository: string } | null> {
  const match = PUSH_TOKEN.exec(token);
  if (!match?.[1]) return null;
  const hex = match[1];
  const imageId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  const [row] = await runningBuild(deps, imageId);
  if (!row?.pushTokenHash) return null;
  if (!bytesEqual(utf8(row.pushTokenHash), utf8(await sha256Hex(token)))) return null;
  return { imageId, repository: repositoryOf(row) };
}
