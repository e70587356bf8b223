/**
 * @module GPU-agent endpoints on `api.`: what agents call (signed with their Ed25519 key,
 * see docs/protocols.md) to claim jobs by long-poll, keep a lease, and post results; and
 * the admin sub-app that registers and disables agent keys (platform admins only).
 */

import type { Context } from "hono";
import { Hono } from "hono";
import type { AppEnv } from "../app.ts";
import { requireAdmin } from "../lib/auth.ts";
import { ApiError } from "../lib/errors.ts";
import { jsonBody, pathParams, rawBody } from "../lib/validation.ts";
import { agentIdParam, claimSchema, jobIdParam, jobResultSchema, registerAgentSchema } from "../schemas/gpu-agents.ts";
import { authenticateAgent } from "../services/gpu-agent-auth.ts";
import { type GpuAgent, registerGpuAgent, setGpuAgentDisabled } from "../services/gpu-agents.ts";
import { claimGpuJob, completeGpuJob, type GpuJob, heartbeatGpuJob, reapGpuJobs } from "../services/gpu-jobs.ts";

/** Between empty claim attempts: a query per agent every half second at most. */
export const CLAIM_POLL_MS = 500;

async function signedAgent(c: Context<AppEnv>): Promise<GpuAgent> {
  const url = new URL(c.req.url);
  return authenticateAgent(c.var.deps, {
    method: c.req.method,
    target: url.pathname + url.search,
    headers: c.req.raw.headers,
    body: await rawBody(c),
  });
}

function jobView(job: GpuJob) {
  return {
    job_id: job.jobId,
    op: job.op,
    status: job.status,
    payload: job.payload,
    attempts: job.attempts,
    lease_ms: job.leaseMs,
    lease_expires_at: job.leaseExpiresAt?.toISOString() ?? null,
    deadline_at: job.deadlineAt.toISOString(),
    created_at: job.createdAt.toISOString(),
  };
}

export const gpuAgentJobs = new Hono<AppEnv>()
  .post("/gpu_agents/jobs/claim", async (c) => {
    const agent = await signedAgent(c);
    const { ops, wait_ms } = await jsonBody(c, claimSchema);
    const deps = c.var.deps;
    await reapGpuJobs(deps.db, deps.now());
    const until = Date.now() + wait_ms;
    for (;;) {
      const job = await claimGpuJob(deps, agent.agentId, ops);
      if (job) return c.json({ job: jobView(job) });
      if (Date.now() + CLAIM_POLL_MS > until) return c.body(null, 204);
      await new Promise((resolve) => setTimeout(resolve, CLAIM_POLL_MS));
    }
  })
  .post("/gpu_agents/jobs/:job_id/heartbeat", async (c) => {
    const agent = await signedAgent(c);
    const { job_id } = pathParams(c, jobIdParam);
    const job = await heartbeatGpuJob(c.var.deps, agent.agentId, job_id);
    return c.json({ job_id, lease_expires_at: job.leaseExpiresAt?.toISOString() ?? null });
  })
  .post("/gpu_agents/jobs/:job_id/result", async (c) => {
    const agent = await signedAgent(c);
    const { job_id } = pathParams(c, jobIdParam);
    const body = await jsonBody(c, jobResultSchema);
    if (body.job_id !== job_id)
      throw new ApiError("validation_failed", "body.job_id differs from the job in the path.");
    const { job, duplicate } = await completeGpuJob(c.var.deps, agent.agentId, body);
    if (job.status === "expired") throw new ApiError("gone", `Job ${job_id} expired: its deadline passed.`);
    return c.json({ job_id, status: job.status, duplicate });
  });

function agentView(agent: GpuAgent) {
  return {
    agent_id: agent.agentId,
    name: agent.name,
    public_key: agent.publicKey,
    disabled: agent.disabled,
    last_seen_at: agent.lastSeenAt?.toISOString() ?? null,
    created_at: agent.createdAt.toISOString(),
  };
}

/** Agent key registration and (dis)abling: platform admins only. */
export const gpuAgentAdmin = new Hono<AppEnv>()
  .post("/gpu_agents", requireAdmin(), async (c) => {
    const body = await jsonBody(c, registerAgentSchema);
    const agent = await registerGpuAgent(c.var.deps.db, { name: body.name, publicKey: body.public_key });
    return c.json(agentView(agent), 201);
  })
  .post("/gpu_agents/:agent_id/disable", requireAdmin(), async (c) => {
    const { agent_id } = pathParams(c, agentIdParam);
    return c.json(agentView(await setGpuAgentDisabled(c.var.deps.db, agent_id, true)));
  })
  .post("/gpu_agents/:agent_id/enable", requireAdmin(), async (c) => {
    const { agent_id } = pathParams(c, agentIdParam);
    return c.json(agentView(await setGpuAgentDisabled(c.var.deps.db, agent_id, false)));
  });
