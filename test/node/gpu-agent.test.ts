/**
 * The real GPU agent process against a scripted API server (a real HTTP server on
 * loopback): its GPU path through the sidecar protocol (a CPU-backed stand-in, as this
 * machine has no GPU), signed claims and callbacks, callback retries, the self-test that
 * refuses work, and configuration errors.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { AGENT_HEADERS, verifyAgentSignature } from "../../src/gpu-proof/agent-auth.ts";
import { KNOWN_ANSWERS } from "../../src/gpu-proof/vectors.ts";
import { newAgentKey, type RunningAgent, removeScratch, scratchDir, spawnAgent } from "../support/agent.ts";

const FAKE = fileURLToPath(new URL("../support/fake-sidecar.ts", import.meta.url));
const MAIN = fileURLToPath(new URL("../../gpu-agent/src/main.ts", import.meta.url));
const vector = KNOWN_ANSWERS[0];
if (!vector) throw new Error("no vectors");

function fakeSidecar(): string {
  const file = path.join(scratchDir("fake-sidecar-"), "chutes-gpu-proof");
  writeFileSync(file, `#!/bin/sh\nexec "${process.execPath}" "${FAKE}" "$@"\n`);
  chmodSync(file, 0o755);
  return file;
}

interface Seen {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A scripted API: `answer` decides each response; every request is recorded. */
async function scriptedApi(answer: (req: Seen, index: number) => { status: number; body?: unknown }) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const entry = { path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks) };
      seen.push(entry);
      const { status, body } = answer(entry, seen.length - 1);
      res.writeHead(status, { "content-type": "application/json" });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

const agents: RunningAgent[] = [];
const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.kill("SIGKILL")));
  for (const server of servers.splice(0)) server.close();
});
afterAll(removeScratch);

const waitFor = async (predicate: () => boolean, timeoutMs = 20_000) => {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 100));
  }
};

describe("gpu agent (process)", () => {
  it("runs a job on the GPU path, signs its requests, and retries a failed callback", async () => {
    const key = newAgentKey();
    const agentId = crypto.randomUUID();
    const jobId = crypto.randomUUID();
    let claims = 0;
    let results = 0;
    const api = await scriptedApi((req) => {
      if (req.path === "/gpu_agents/jobs/claim") {
        claims++;
        if (claims > 1) return { status: 204 };
        const payload = { device: vector.params.device, seed: String(vector.params.seed), profile: "tiny" };
        const deadline = new Date(Date.now() + 60_000).toISOString();
        return {
          status: 200,
          body: { job: { job_id: jobId, op: "prove", payload, attempts: 1, lease_ms: 60_000, deadline_at: deadline } },
        };
      }
      results++;
      return results === 1 ? { status: 503, body: { detail: "try later" } } : { status: 200, body: {} };
    });
    servers.push(api.server);
    const agent = await spawnAgent({
      CHUTES_API_URL: api.url,
      GPU_AGENT_ID: agentId,
      GPU_AGENT_KEY_FILE: key.keyFile,
      GPU_AGENT_MODE: "gpu",
      GPU_AGENT_SIDECAR: fakeSidecar(),
    });
    agents.push(agent);
    await agent.ready();
    await waitFor(() => results >= 2);
    const health = await agent.health();
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ ok: true, mode: "gpu", devices: [{ name: "Fake GPU (CPU reference)" }] });

    const posts = api.seen.filter((s) => s.path.endsWith("/result"));
    const last = posts.at(-1) as Seen;
    const body = JSON.parse(last.body.toString());
    expect(body).toMatchObject({
      job_id: jobId,
      op: "prove",
      status: "ok",
      result: { commitments: vector.commitments },
      agent_version: "0.1.0",
      device: { index: 0 },
    });
    expect(body.timings.total_ms).toBeGreaterThanOrEqual(body.timings.gpu_ms);
    for (const request of api.seen) {
      expect(request.headers[AGENT_HEADERS.id]).toBe(agentId);
      const valid = await verifyAgentSignature(key.publicKey, String(request.headers[AGENT_HEADERS.signature]), {
        method: "POST",
        target: request.path,
        timestamp: Number(request.headers[AGENT_HEADERS.timestamp]),
        nonce: String(request.headers[AGENT_HEADERS.nonce]),
        body: new Uint8Array(request.body),
      });
      expect(valid, request.path).toBe(true);
    }
    // Each try is signed afresh: a retry is not a replay.
    expect(new Set(posts.map((p) => p.headers[AGENT_HEADERS.nonce])).size).toBe(posts.length);
    const metrics = await agent.metrics();
    expect(metrics).toContain("gpu_agent_callback_retries_total 1");
    expect(metrics).toContain('gpu_agent_jobs_total{op="prove",status="ok"} 1');
    expect(metrics).toMatch(/gpu_agent_op_seconds_count\{op="prove"\} 1/);
  });

  it("refuses work when the self-test fails: /healthz is 503 and the API never hears from it", async () => {
    const key = newAgentKey();
    const api = await scriptedApi(() => ({ status: 204 }));
    servers.push(api.server);
    const sidecar = fakeSidecar();
    const agent = await spawnAgent({
      CHUTES_API_URL: api.url,
      GPU_AGENT_ID: crypto.randomUUID(),
      GPU_AGENT_KEY_FILE: key.keyFile,
      GPU_AGENT_MODE: "gpu",
      GPU_AGENT_SIDECAR: sidecar,
      FAKE_SIDECAR_CORRUPT: "1",
    });
    agents.push(agent);
    await agent.ready();
    await new Promise((r) => setTimeout(r, 1000));
    const health = await agent.health();
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ ok: false, selftest: { passed: false } });
    expect((health.body.selftest as { failures: string[] }).failures.join()).toMatch(/commitments differ/);
    expect(await agent.metrics()).toContain("gpu_agent_selftest_passed 0");
    expect(api.seen).toHaveLength(0);
  });

  it("falls back to the CPU reference in auto mode when no GPU is found, and claims work", async () => {
    const key = newAgentKey();
    const api = await scriptedApi(() => ({ status: 204 }));
    servers.push(api.server);
    const agent = await spawnAgent({
      CHUTES_API_URL: api.url,
      GPU_AGENT_ID: crypto.randomUUID(),
      GPU_AGENT_KEY_FILE: key.keyFile,
      GPU_AGENT_MODE: "auto",
      GPU_AGENT_SIDECAR: "/nonexistent/chutes-gpu-proof",
      GPU_AGENT_OPS: "verify,selftest",
    });
    agents.push(agent);
    await agent.ready();
    await waitFor(() => api.seen.length > 0);
    expect((await agent.health()).body).toMatchObject({
      ok: true,
      mode: "cpu",
      devices: [{ name: "cpu-reference-0" }],
    });
    expect(JSON.parse((api.seen[0] as Seen).body.toString())).toEqual({ ops: ["verify", "selftest"], wait_ms: 2000 });
  });

  it("exits with a clear message on a bad configuration or a GPU it cannot find", () => {
    const key = newAgentKey();
    const run = (env: Record<string, string>) =>
      spawnSync(process.execPath, [MAIN], { env: { PATH: process.env.PATH ?? "", ...env }, encoding: "utf8" });
    const missing = run({ CHUTES_API_URL: "http://127.0.0.1:1", GPU_AGENT_KEY_FILE: key.keyFile });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/GPU_AGENT_ID/);
    const noGpu = run({
      CHUTES_API_URL: "http://127.0.0.1:1",
      GPU_AGENT_ID: crypto.randomUUID(),
      GPU_AGENT_KEY_FILE: key.keyFile,
      GPU_AGENT_MODE: "gpu",
      GPU_AGENT_SIDECAR: "/nonexistent/chutes-gpu-proof",
    });
    expect(noGpu.status).toBe(1);
    expect(noGpu.stderr).toMatch(/found no GPU/);
  });
});
