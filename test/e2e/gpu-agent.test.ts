/**
 * GPU agents end to end against a real `npm start`: its own CPU-mode agent completes
 * prove, encrypt and verify jobs with signed callbacks and carries a node verification
 * through; and an agent SIGKILLed mid-job loses nothing: the job's lease lapses, the job
 * is re-queued, and the restarted agent completes it.
 */
import { eq } from "drizzle-orm";
import { afterAll, describe, expect, inject, it } from "vitest";
import { withDatabase } from "../../infra/dev/database.ts";
import { DEV_AGENT_NAME } from "../../infra/dev/gpu-agent.ts";
import { gpuAgents, gpuJobs } from "../../src/db/schema.ts";
import { cpuExecutor } from "../../src/gpu-proof/engine.ts";
import { decryptWithProof, prove, resolve } from "../../src/gpu-proof/protocol.ts";
import { KNOWN_ANSWERS } from "../../src/gpu-proof/vectors.ts";
import { registerGpuAgent, setGpuAgentDisabled } from "../../src/services/gpu-agents.ts";
import { awaitGpuJob, enqueueGpuJob, type QueueDeps } from "../../src/services/gpu-jobs.ts";
import {
  challengeCiphertexts,
  judgeProofResponse,
  proofVerdict,
  startNodeProof,
  startProofChecks,
} from "../../src/services/gpu-proof.ts";
import { newAgentKey, type RunningAgent, removeScratch, spawnAgent } from "../support/agent.ts";

const base = inject("platformUrl");
const databaseUrl = inject("platformDatabaseUrl");
const vector = KNOWN_ANSWERS[0];
if (!vector) throw new Error("no vectors");
const device = vector.params.device;
const payload = { device, seed: String(vector.params.seed), profile: "tiny" };

const db = <T>(fn: (deps: QueueDeps) => Promise<T>) =>
  withDatabase(databaseUrl, (d) => fn({ db: d, now: () => new Date() }));
const agents: RunningAgent[] = [];
afterAll(async () => {
  await Promise.all(agents.map((a) => a.kill("SIGKILL")));
  removeScratch();
});

describe("npm start's GPU agent (CPU mode)", () => {
  it("completes prove, encrypt and verify jobs with signed callbacks", async () => {
    await db(async (deps) => {
      const [devAgent] = await deps.db.select().from(gpuAgents).where(eq(gpuAgents.name, DEV_AGENT_NAME));
      expect(devAgent?.disabled).toBe(false);
      const proveJob = await enqueueGpuJob(deps, "prove", payload);
      const good = await enqueueGpuJob(deps, "verify", { ...payload, commitments: vector.commitments, check_index: 2 });
      const forged = vector.commitments.map((c, i) => (i === 7 ? "ab".repeat(32) : c));
      const bad = await enqueueGpuJob(deps, "verify", { ...payload, commitments: forged, check_index: 3 });
      const short = await enqueueGpuJob(deps, "verify", { ...payload, commitments: forged.slice(1), check_index: 0 });
      const sealed = await enqueueGpuJob(deps, "encrypt", { ...payload, plaintext: "hello gpu" });
      const wait = (id: string) => awaitGpuJob(deps, id, { timeoutMs: 45_000, pollMs: 200 });

      const proved = await wait(proveJob.jobId);
      expect(proved).toMatchObject({ status: "succeeded", agentId: devAgent?.agentId, attempts: 1 });
      expect(proved.result).toMatchObject({ commitments: vector.commitments, agent_version: "0.1.0" });
      expect((await wait(good.jobId)).result).toMatchObject({ valid: true, check_index: 2 });
      expect((await wait(bad.jobId)).result).toMatchObject({ valid: false, mismatch: { t: 1, m: 3 } });
      expect(await wait(short.jobId)).toMatchObject({
        status: "failed",
        error: expect.stringMatching(/7 commitments; this profile needs 8/),
      });
      const ciphertext = ((await wait(sealed.jobId)).result as { ciphertext: string }).ciphertext;
      const resolved = resolve(vector.params);
      expect(await decryptWithProof(resolved, await prove(resolved, cpuExecutor), ciphertext)).toBe("hello gpu");
    });
  });

  it("verifies a node: challenge, a simulated miner's proof, and the checks; a late answer is refused", async () => {
    await db(async (deps) => {
      const challenge = await startNodeProof(deps, { devices: [device], profile: "tiny" });
      const ciphertexts = await challengeCiphertexts(deps, challenge, { timeoutMs: 45_000 });
      // The miner's side, with the CPU reference.
      const resolved = resolve({ device, seed: BigInt(challenge.seed), profile: "tiny" });
      const proof = await prove(resolved, cpuExecutor);
      const plaintext = await decryptWithProof(resolved, proof, ciphertexts[device.uuid] as string);
      const response = { [device.uuid]: { plaintext: plaintext ?? "", commitments: proof.commitments } };
      expect(judgeProofResponse(challenge, response, 500)).toEqual({ ok: true });
      expect(judgeProofResponse(challenge, response, 31_000)).toMatchObject({ ok: false, reason: "answered too late" });
      const checks = await startProofChecks(deps, challenge, response);
      expect(await proofVerdict(deps, checks, { timeoutMs: 45_000 })).toEqual({ valid: true });

      const forged = { [device.uuid]: { plaintext: plaintext ?? "", commitments: [...proof.commitments].reverse() } };
      const forgedChecks = await startProofChecks(deps, challenge, forged);
      expect(await proofVerdict(deps, forgedChecks, { timeoutMs: 45_000 })).toMatchObject({ valid: false });
    });
  });
});

describe("an agent killed mid-job", () => {
  it("loses nothing: the lease lapses, the job is re-queued and the restarted agent completes it", async () => {
    const key = newAgentKey();
    const registered = await withDatabase(databaseUrl, (d) =>
      registerGpuAgent(d, { name: `e2e-${crypto.randomUUID().slice(0, 8)}`, publicKey: key.publicKey }),
    );
    const env = {
      CHUTES_API_URL: base,
      GPU_AGENT_ID: registered.agentId,
      GPU_AGENT_KEY_FILE: key.keyFile,
      GPU_AGENT_MODE: "cpu",
      GPU_AGENT_QUEUE_BOUND: "1",
    };
    // Only the agent under test may take the job: npm start's own agent is disabled meanwhile.
    const devAgentId = await withDatabase(databaseUrl, async (d) => {
      const [row] = await d.select().from(gpuAgents).where(eq(gpuAgents.name, DEV_AGENT_NAME));
      if (!row) throw new Error("npm start registered no dev agent");
      await setGpuAgentDisabled(d, row.agentId, true);
      return row.agentId;
    });
    try {
      await db(async (deps) => {
        const smallPayload = { ...payload, seed: "987654321", profile: "small" };
        // Short enough to lapse soon after the kill, long enough that the second agent's
        // heartbeats keep it on a loaded two-core machine.
        const job = await enqueueGpuJob(deps, "prove", smallPayload, { leaseMs: 6000 });
        const first = await spawnAgent(env);
        agents.push(first);
        await first.ready();
        const row = async () => (await deps.db.select().from(gpuJobs).where(eq(gpuJobs.jobId, job.jobId)))[0];
        const until = Date.now() + 30_000;
        while ((await row())?.status !== "running") {
          if (Date.now() > until) throw new Error(`the job was never claimed:\n${first.output.join("")}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        await first.kill("SIGKILL");
        expect(await row()).toMatchObject({
          status: "running",
          agentId: registered.agentId,
          attempts: 1,
          result: null,
        });

        const second = await spawnAgent(env);
        agents.push(second);
        const done = await awaitGpuJob(deps, job.jobId, { timeoutMs: 60_000, pollMs: 200 });
        expect(done, second.output.join("")).toMatchObject({ status: "succeeded", attempts: 2 });
        const expected = await prove(resolve({ device, seed: 987654321n, profile: "small" }), cpuExecutor);
        expect((done.result as { commitments: string[] }).commitments).toEqual(expected.commitments);
      });
    } finally {
      await withDatabase(databaseUrl, (d) => setGpuAgentDisabled(d, devAgentId, false));
    }
  });
});
