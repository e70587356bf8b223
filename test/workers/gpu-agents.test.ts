/**
 * The GPU-agent API inside workerd against real Postgres and Redis: signed claims and
 * callbacks (bad signature, stale timestamp, replay: nothing changes), job states, leases
 * that re-queue a dead agent's job, deadlines, concurrency-safe claims, and registration.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/client.ts";
import { gpuJobs } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import { signAgentRequest } from "../../src/gpu-proof/agent-auth.ts";
import { KNOWN_ANSWERS } from "../../src/gpu-proof/vectors.ts";
import { toHex } from "../../src/lib/bytes.ts";
import { registerGpuAgent, setGpuAgentDisabled } from "../../src/services/gpu-agents.ts";
import { claimGpuJob, enqueueGpuJob, getGpuJob, reapGpuJobs } from "../../src/services/gpu-jobs.ts";
import { API_HOST, registerUser, sendSigned, setPermissions } from "./accounts.ts";
import { callHost, expectError } from "./helpers.ts";

const config = configFor(env);
const handle = openDatabase(config);
const db = handle.db;
afterAll(() => handle.close());

const vector = KNOWN_ANSWERS[0];
if (!vector) throw new Error("no vectors");
const tinyPayload = { device: vector.params.device, seed: String(vector.params.seed), profile: "tiny" };
const tinyResult = { commitments: vector.commitments, elapsed_ms: 12 };

interface TestAgent {
  id: string;
  key: CryptoKey;
}

async function newAgent(tag: string): Promise<TestAgent> {
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const raw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
  const row = await registerGpuAgent(db, { name: `${tag}-${crypto.randomUUID().slice(0, 8)}`, publicKey: toHex(raw) });
  return { id: row.agentId, key: pair.privateKey };
}

interface SignedInit {
  signWith?: CryptoKey;
  nowMs?: number;
}

async function signedRequest(agent: TestAgent, path: string, body: unknown, init: SignedInit = {}): Promise<Request> {
  const bytes = new TextEncoder().encode(JSON.stringify(body));
  const headers = await signAgentRequest(
    init.signWith ?? agent.key,
    agent.id,
    { method: "POST", target: path, body: bytes },
    init.nowMs,
  );
  return new Request(`http://api.localhost${path}`, {
    method: "POST",
    body: bytes,
    headers: { ...headers, "content-type": "application/json" },
  });
}

const send = (request: Request) => callHost("api.localhost", new URL(request.url).pathname, request);
const call = async (agent: TestAgent, path: string, body: unknown, init?: SignedInit) =>
  send(await signedRequest(agent, path, body, init));

const clock = (offsetMs = 0) => ({ db, now: () => new Date(Date.now() + offsetMs) });
const enqueue = (options = {}) => enqueueGpuJob(clock(), "prove", tinyPayload, options);
const resultBody = (jobId: string, extra: Record<string, unknown> = {}) => ({
  job_id: jobId,
  op: "prove",
  status: "ok",
  result: tinyResult,
  timings: { gpu_ms: 10, total_ms: 12 },
  agent_version: "test",
  ...extra,
});
const rowOf = async (jobId: string) => (await db.select().from(gpuJobs).where(eq(gpuJobs.jobId, jobId)))[0];

/** Claims until this test's job comes back (other tests' jobs may be queued too). */
async function claimUntil(agent: TestAgent, jobId: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 50; i++) {
    const res = await call(agent, "/gpu_agents/jobs/claim", { wait_ms: 0 });
    if (res.status === 204) continue;
    expect(res.status).toBe(200);
    const { job } = (await res.json()) as { job: Record<string, unknown> };
    if (job.job_id === jobId) return job;
  }
  throw new Error(`job ${jobId} never came back`);
}

let alice: TestAgent;
let bob: TestAgent;
beforeAll(async () => {
  alice = await newAgent("alice");
  bob = await newAgent("bob");
});

describe("claiming jobs", () => {
  it("hands a queued job to one agent, running with a lease, and answers 204 when nothing waits", async () => {
    const job = await enqueue();
    const claimed = await claimUntil(alice, job.jobId);
    expect(claimed).toMatchObject({ op: "prove", status: "running", attempts: 1, payload: tinyPayload });
    expect(Date.parse(claimed.lease_expires_at as string)).toBeGreaterThan(Date.now());
    const row = await rowOf(job.jobId);
    expect(row).toMatchObject({ status: "running", agentId: alice.id, attempts: 1 });
    const res = await call(bob, "/gpu_agents/jobs/claim", { ops: ["selftest"], wait_ms: 0 });
    expect(res.status).toBe(204);
  });

  it("long-polls: a claim waiting for work gets a job enqueued while it waits", async () => {
    const waiting = call(bob, "/gpu_agents/jobs/claim", { ops: ["encrypt"], wait_ms: 5000 });
    await new Promise((r) => setTimeout(r, 700));
    const job = await enqueueGpuJob(clock(), "encrypt", { ...tinyPayload, plaintext: "hello" });
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { job: { job_id: string } }).job.job_id).toBe(job.jobId);
  });

  it("never gives one job to two concurrent claimers", async () => {
    const jobs = await Promise.all(Array.from({ length: 6 }, () => enqueueGpuJob(clock(), "selftest", {})));
    const ids = new Set(jobs.map((j) => j.jobId));
    const agents = [alice, bob, await newAgent("carol")];
    const claimed = await Promise.all(
      Array.from({ length: 12 }, (_, i) => claimGpuJob(clock(), (agents[i % 3] as TestAgent).id, ["selftest"])),
    );
    const mine = claimed.filter((j) => j && ids.has(j.jobId)).map((j) => j?.jobId);
    expect(new Set(mine).size).toBe(mine.length);
    expect(mine.length).toBe(6);
  });

  it("validates the claim body and the job payload at enqueue time", async () => {
    await expectError(await call(alice, "/gpu_agents/jobs/claim", { wait_ms: 60_000 }), 422, "validation_failed");
    await expectError(await call(alice, "/gpu_agents/jobs/claim", { ops: ["mine-bitcoin"] }), 422, "validation_failed");
    const before = (await db.select().from(gpuJobs)).length;
    await expect(enqueueGpuJob(clock(), "prove", { ...tinyPayload, seed: "18446744073709551616" })).rejects.toThrow(
      /payload\.seed: must be at most 2\^64 − 1/,
    );
    await expect(enqueueGpuJob(clock(), "prove", { ...tinyPayload, device: { name: "x" } })).rejects.toThrow(
      /payload\.device/,
    );
    expect((await db.select().from(gpuJobs)).length).toBe(before);
  });
});

describe("signed callbacks", () => {
  it("records a result once: a repeat is acknowledged as a duplicate and changes nothing", async () => {
    const job = await enqueue();
    await claimUntil(alice, job.jobId);
    const path = `/gpu_agents/jobs/${job.jobId}/result`;
    const first = await call(alice, path, resultBody(job.jobId));
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ job_id: job.jobId, status: "succeeded", duplicate: false });
    const row = await rowOf(job.jobId);
    expect(row?.result).toMatchObject({ commitments: vector.commitments, agent_version: "test" });
    const again = await call(alice, path, resultBody(job.jobId, { result: { ...tinyResult, elapsed_ms: 99 } }));
    expect(await again.json()).toEqual({ job_id: job.jobId, status: "succeeded", duplicate: true });
    expect(await rowOf(job.jobId)).toEqual(row);
  });

  it("refuses a bad signature, another agent's key, a stale or future timestamp, and a replay", async () => {
    const job = await enqueue();
    await claimUntil(alice, job.jobId);
    const path = `/gpu_agents/jobs/${job.jobId}/result`;
    const before = await rowOf(job.jobId);
    const wrongKey = await call(alice, path, resultBody(job.jobId), { signWith: bob.key });
    expect((await expectError(wrongKey, 401, "unauthorized")).detail).toMatch(/does not verify/);
    const stale = await call(alice, path, resultBody(job.jobId), { nowMs: Date.now() - 120_000 });
    expect((await expectError(stale, 401, "unauthorized")).detail).toMatch(/timestamp/);
    const future = await call(alice, path, resultBody(job.jobId), { nowMs: Date.now() + 120_000 });
    await expectError(future, 401, "unauthorized");
    const tampered = await signedRequest(alice, path, resultBody(job.jobId));
    const forged = new Request(tampered.url, {
      method: "POST",
      headers: tampered.headers,
      body: JSON.stringify(resultBody(job.jobId, { status: "error", error: "forged" })),
    });
    await expectError(await send(forged), 401, "unauthorized");
    const unsigned = await callHost("api.localhost", path, { method: "POST", body: "{}" });
    await expectError(unsigned, 401, "unauthorized");
    expect(await rowOf(job.jobId)).toEqual(before);

    const request = await signedRequest(alice, path, resultBody(job.jobId));
    const replay = request.clone();
    expect((await send(request)).status).toBe(200);
    const after = await rowOf(job.jobId);
    expect((await expectError(await send(replay), 401, "unauthorized")).detail).toMatch(/replayed/);
    expect(await rowOf(job.jobId)).toEqual(after);
  });

  it("refuses a replayed claim: the replay claims nothing", async () => {
    const request = await signedRequest(bob, "/gpu_agents/jobs/claim", { ops: ["verify"], wait_ms: 0 });
    const replay = request.clone();
    expect((await send(request)).status).toBe(204);
    const job = await enqueueGpuJob(clock(), "verify", {
      ...tinyPayload,
      commitments: vector.commitments,
      check_index: 0,
    });
    await expectError(await send(replay), 401, "unauthorized");
    expect((await rowOf(job.jobId))?.status).toBe("queued");
  });

  it("rejects a malformed result and a result for a job the agent does not hold, changing nothing", async () => {
    const job = await enqueue();
    await claimUntil(alice, job.jobId);
    const path = `/gpu_agents/jobs/${job.jobId}/result`;
    const before = await rowOf(job.jobId);
    const short = await call(alice, path, resultBody(job.jobId, { result: { commitments: ["zz"], elapsed_ms: 1 } }));
    await expectError(short, 422, "validation_failed");
    await expectError(await call(bob, path, resultBody(job.jobId)), 409, "conflict");
    await expectError(await call(alice, path, resultBody(job.jobId, { op: "verify" })), 422, "validation_failed");
    const other = crypto.randomUUID();
    await expectError(await call(alice, `/gpu_agents/jobs/${other}/result`, resultBody(other)), 404, "not_found");
    expect(await rowOf(job.jobId)).toEqual(before);
  });

  it("refuses a disabled agent", async () => {
    const dave = await newAgent("dave");
    await setGpuAgentDisabled(db, dave.id, true);
    await expectError(await call(dave, "/gpu_agents/jobs/claim", { wait_ms: 0 }), 403, "forbidden");
  });

  it("records an agent's error as a failed job", async () => {
    const job = await enqueue();
    await claimUntil(alice, job.jobId);
    const res = await call(
      alice,
      `/gpu_agents/jobs/${job.jobId}/result`,
      resultBody(job.jobId, { status: "error", result: undefined, error: "profile too large for CPU mode" }),
    );
    expect(await res.json()).toMatchObject({ status: "failed" });
    expect(await rowOf(job.jobId)).toMatchObject({ status: "failed", error: "profile too large for CPU mode" });
  });
});

describe("leases and deadlines", () => {
  it("re-queues a job whose agent stopped heart-beating, then refuses the dead agent's late result", async () => {
    const job = await enqueue({ leaseMs: 1000 });
    await claimUntil(alice, job.jobId);
    const beat = await call(alice, `/gpu_agents/jobs/${job.jobId}/heartbeat`, {});
    expect(beat.status).toBe(200);
    expect((await getGpuJob(clock(5000), job.jobId)).status).toBe("queued");
    // Older queued jobs of other tests may come first; claim until this one is taken.
    for (let i = 0; i < 50 && (await rowOf(job.jobId))?.status === "queued"; i++) {
      await claimGpuJob(clock(5000), bob.id, ["prove"]);
    }
    const row = await rowOf(job.jobId);
    expect(row).toMatchObject({ status: "running", attempts: 2 });
    const late = await call(alice, `/gpu_agents/jobs/${job.jobId}/result`, resultBody(job.jobId));
    await expectError(late, 409, "conflict");
    await expectError(await call(alice, `/gpu_agents/jobs/${job.jobId}/heartbeat`, {}), 409, "conflict");
    expect(await rowOf(job.jobId)).toEqual(row);
  });

  it("fails a job whose lease lapsed on every attempt", async () => {
    const job = await enqueue({ leaseMs: 1000, maxAttempts: 1 });
    await claimUntil(alice, job.jobId);
    const after = await getGpuJob(clock(5000), job.jobId);
    expect(after).toMatchObject({ status: "failed", error: expect.stringMatching(/lease lapsed/) });
    const late = await call(alice, `/gpu_agents/jobs/${job.jobId}/result`, resultBody(job.jobId));
    expect((await expectError(late, 409, "conflict")).detail).toMatch(/already failed/);
    expect(await rowOf(job.jobId)).toEqual(after);
  });

  it("expires a job past its deadline and refuses a result that comes too late", async () => {
    const queued = await enqueue({ deadlineMs: 60_000 });
    await reapGpuJobs(db, new Date(Date.now() + 61_000));
    expect((await rowOf(queued.jobId))?.status).toBe("expired");

    const running = await enqueue({ deadlineMs: 2000 });
    await claimUntil(alice, running.jobId);
    await new Promise((r) => setTimeout(r, 2100));
    const late = await call(alice, `/gpu_agents/jobs/${running.jobId}/result`, resultBody(running.jobId));
    await expectError(late, 410, "gone");
    expect(await rowOf(running.jobId)).toMatchObject({ status: "expired", result: null });
  });

  it("enqueue is idempotent on job_id", async () => {
    const jobId = crypto.randomUUID();
    const a = await enqueue({ jobId });
    const b = await enqueue({ jobId });
    expect(b.jobId).toBe(a.jobId);
    expect(b.createdAt).toEqual(a.createdAt);
  });
});

describe("agent registration (admin)", () => {
  it("refuses anonymous callers and users without the admin permission", async () => {
    const body = JSON.stringify({ name: "x", public_key: "00".repeat(32) });
    await expectError(await callHost(API_HOST, "/gpu_agents", { method: "POST", body }), 401, "unauthorized");
    const user = await registerUser();
    const res = await sendSigned(user.hotkey, { method: "POST", path: "/gpu_agents", body });
    await expectError(res, 403, "forbidden");
  });

  it("lets an admin register, reject duplicates and bad keys, and disable", async () => {
    const admin = await registerUser();
    await setPermissions(admin, ["admin"]);
    const post = (path: string, body: unknown) =>
      sendSigned(admin.hotkey, { method: "POST", path, body: JSON.stringify(body) });
    const name = `ops-${crypto.randomUUID().slice(0, 8)}`;
    const key = toHex(crypto.getRandomValues(new Uint8Array(32)));
    const created = await post("/gpu_agents", { name, public_key: key.toUpperCase() });
    expect(created.status).toBe(201);
    const agent = (await created.json()) as { agent_id: string; public_key: string; disabled: boolean };
    expect(agent).toMatchObject({ public_key: key, disabled: false });
    await expectError(await post("/gpu_agents", { name, public_key: key }), 409, "conflict");
    await expectError(await post("/gpu_agents", { name: "Bad Name", public_key: key }), 422, "validation_failed");
    await expectError(await post("/gpu_agents", { name: "ok", public_key: "abc" }), 422, "validation_failed");
    const disabled = await post(`/gpu_agents/${agent.agent_id}/disable`, {});
    expect(await disabled.json()).toMatchObject({ disabled: true });
    await expectError(await post(`/gpu_agents/${crypto.randomUUID()}/disable`, {}), 404, "not_found");
  });
});
