/**
 * @module Builder endpoints on `api.` (docs/protocols.md, "Image builder"): what builders
 * call, signed with their Ed25519 key, to claim builds by long-poll, keep the lease, fetch
 * the build inputs, stream log lines and post the result; and the admin sub-app that
 * registers and disables builder keys (platform admins only).
 */
import type { Context } from "hono";
import { Hono } from "hono";
import type { AppEnv } from "../app.ts";
import { requireAdmin } from "../lib/auth.ts";
import { ApiError } from "../lib/errors.ts";
import { jsonBody, pathParams, rawBody } from "../lib/validation.ts";
import {
  buildClaimSchema,
  builderIdParam,
  buildImageParam,
  buildResultSchema,
  logBatchSchema,
  registerBuilderSchema,
} from "../schemas/builders.ts";
import { buildEnded, buildLog, buildStarted, settleReaped } from "../services/build-logs.ts";
import { authenticateBuilder, type Builder, registerBuilder, setBuilderDisabled } from "../services/builders.ts";
import {
  type BuildSettings,
  claimBuild,
  finishBuild,
  heartbeatBuild,
  heldBuild,
  reapBuilds,
  repositoryOf,
} from "../services/builds.ts";
import { imageObjectKeys } from "../services/images.ts";

/** Between empty claim attempts: a query per builder every second at most. */
export const BUILD_CLAIM_POLL_MS = 1000;
/** Largest log batch body. */
const LOG_BATCH_MAX_BYTES = 1024 * 1024;

async function signedBuilder(c: Context<AppEnv>, maxBytes?: number): Promise<Builder> {
  const url = new URL(c.req.url);
  return authenticateBuilder(c.var.deps, {
    method: c.req.method,
    target: url.pathname + url.search,
    headers: c.req.raw.headers,
    body: await rawBody(c, maxBytes),
  });
}

const settings = (c: Context<AppEnv>): BuildSettings => ({
  leaseMs: c.var.config.BUILD_LEASE_MS,
  timeoutS: c.var.config.BUILD_TIMEOUT_S,
  maxAttempts: c.var.config.BUILD_MAX_ATTEMPTS,
});

/** One of the build's inputs from R2, streamed to its builder. */
async function buildInput(c: Context<AppEnv>, which: "context" | "dockerfile"): Promise<Response> {
  const builder = await signedBuilder(c);
  const { image_id } = pathParams(c, buildImageParam);
  const target = await heldBuild(c.var.deps, builder.builderId, image_id);
  const object = await c.var.deps.bucket.get(imageObjectKeys(target.userId, target.imageId)[which]);
  if (!object) throw new ApiError("not_found", `The ${which} of image ${image_id} is missing from storage.`);
  return new Response(object.body, {
    headers: {
      "content-type": which === "context" ? "application/zip" : "text/plain; charset=utf-8",
      "content-length": String(object.size),
    },
  });
}

export const builderJobs = new Hono<AppEnv>()
  .post("/builders/jobs/claim", async (c) => {
    const builder = await signedBuilder(c);
    const { wait_ms } = await jsonBody(c, buildClaimSchema);
    const { deps } = c.var;
    await settleReaped(c.var, await reapBuilds(deps));
    const until = Date.now() + wait_ms;
    for (;;) {
      const job = await claimBuild(deps, builder.builderId, settings(c));
      if (job) {
        await buildStarted(c.var, job, job.attempt, builder.name);
        return c.json({
          job: {
            image_id: job.imageId,
            attempt: job.attempt,
            username: job.username,
            name: job.name,
            tag: job.tag,
            repository: repositoryOf(job),
            lease_ms: job.leaseMs,
            lease_expires_at: job.leaseExpiresAt.toISOString(),
            deadline_at: job.deadlineAt.toISOString(),
            push_token: job.pushToken,
          },
        });
      }
      if (Date.now() + BUILD_CLAIM_POLL_MS > until) return c.body(null, 204);
      await new Promise((resolve) => setTimeout(resolve, BUILD_CLAIM_POLL_MS));
    }
  })
  .post("/builders/jobs/:image_id/heartbeat", async (c) => {
    const builder = await signedBuilder(c);
    const { image_id } = pathParams(c, buildImageParam);
    const leaseExpiresAt = await heartbeatBuild(c.var.deps, builder.builderId, image_id);
    return c.json({ image_id, lease_expires_at: leaseExpiresAt.toISOString() });
  })
  .get("/builders/jobs/:image_id/context", (c) => buildInput(c, "context"))
  .get("/builders/jobs/:image_id/dockerfile", (c) => buildInput(c, "dockerfile"))
  .post("/builders/jobs/:image_id/logs", async (c) => {
    const builder = await signedBuilder(c, LOG_BATCH_MAX_BYTES);
    const { image_id } = pathParams(c, buildImageParam);
    const batch = await jsonBody(c, logBatchSchema, { maxBytes: LOG_BATCH_MAX_BYTES });
    const held = await heldBuild(c.var.deps, builder.builderId, image_id);
    if (held.attempt !== batch.attempt) {
      throw new ApiError("conflict", `Attempt ${batch.attempt} of this build is over (now ${held.attempt}).`);
    }
    const outcome = await buildLog(c.var.config, image_id).append(batch.attempt, batch.seq, batch.lines);
    if (!outcome.ok) {
      throw new ApiError(
        "conflict",
        `Log batch refused (${outcome.reason}); the log expects line ${outcome.next_seq}.`,
      );
    }
    return c.json({ image_id, next_seq: outcome.next_seq });
  })
  .post("/builders/jobs/:image_id/result", async (c) => {
    const builder = await signedBuilder(c);
    const { image_id } = pathParams(c, buildImageParam);
    const result = await jsonBody(c, buildResultSchema);
    const held = await heldBuild(c.var.deps, builder.builderId, image_id).catch(() => null);
    if (held && held.attempt !== result.attempt) {
      throw new ApiError("conflict", `Attempt ${result.attempt} of this build is over (now ${held.attempt}).`);
    }
    const finished = await finishBuild(c.var.deps, builder.builderId, image_id, {
      status: result.status,
      error: result.status === "error" ? result.error : undefined,
    });
    // Also on a repeat: the log may not have been closed the first time.
    await buildEnded(c.var, finished, finished.status, finished.message);
    return c.json({ image_id, status: finished.status, duplicate: finished.duplicate });
  });

function builderView(builder: Builder) {
  return {
    builder_id: builder.builderId,
    name: builder.name,
    public_key: builder.publicKey,
    disabled: builder.disabled,
    last_seen_at: builder.lastSeenAt?.toISOString() ?? null,
    created_at: builder.createdAt.toISOString(),
  };
}

/** Builder key registration and (dis)abling: platform admins only. */
export const builderAdmin = new Hono<AppEnv>()
  .post("/builders", requireAdmin(), async (c) => {
    const body = await jsonBody(c, registerBuilderSchema);
    const builder = await registerBuilder(c.var.deps.db, { name: body.name, publicKey: body.public_key });
    return c.json(builderView(builder), 201);
  })
  .post("/builders/:builder_id/disable", requireAdmin(), async (c) => {
    const { builder_id } = pathParams(c, builderIdParam);
    return c.json(builderView(await setBuilderDisabled(c.var.deps.db, builder_id, true)));
  })
  .post("/builders/:builder_id/enable", requireAdmin(), async (c) => {
    const { builder_id } = pathParams(c, builderIdParam);
    return c.json(builderView(await setBuilderDisabled(c.var.deps.db, builder_id, false)));
  });
