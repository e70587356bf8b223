/**
 * @module The two verifications of the miner plane, run by the `Verifier` Durable Object
 * (one per node task, one per instance) from an alarm, never inside a client's request:
 *
 * - **Nodes** (docs/gpu-proof.md §9): the validator's agents seal a fresh plaintext per GPU
 *   under a fresh seed; the validator POSTs `{seed, profile, ciphertexts}` to the miner's
 *   verification server (`/challenge/proof`, signed, bounded by the profile's time window)
 *   and times the answer; then the agents check every GPU's proof at a random index.
 *   Verified → `gpu_verified` per GPU; anything else → `failed` with the reason.
 * - **Instances** (docs/protocols.md "Instance protocol"): a fresh session key, sealed by
 *   an agent under the GPU-proof key of one of the instance's GPUs with a fresh seed, is
 *   handed over with a signed `POST /_exchange`; a `/_ping` MAC then proves the instance
 *   holds it. Verified → routable, `instance_verified`; otherwise the instance is removed
 *   with the reason (no half-registered instance stays behind).
 *
 * Every wait is bounded (agents, the miner, the instance), and both flows are idempotent:
 * they act only on nodes still `verifying` / an instance not yet verified.
 */
import { and, eq } from "drizzle-orm";
import type { Verifier } from "../../durable-objects/verifier.ts";
import { instanceAudit, instanceNodes, instances, nodes } from "../db/schema.ts";
import type { Config } from "../env.ts";
import { timeWindow } from "../gpu-proof/profiles.ts";
import { randomSeed } from "../gpu-proof/protocol.ts";
import { toHex } from "../lib/bytes.ts";
import { check } from "../lib/validation.ts";
import { awaitGpuJob, enqueueGpuJob } from "./gpu-jobs.ts";
import {
  challengeCiphertexts,
  judgeProofResponse,
  type NodeChallenge,
  type ProofResponse,
  proofResponseSchema,
  proofVerdict,
  startNodeProof,
  startProofChecks,
} from "./gpu-proof.ts";
import { generateSessionKey, sealSessionKey } from "./instance-keys.ts";
import { instanceBase, pingInstance, refreshRouterQuietly, removeInstance } from "./instances.ts";
import { callMiner, replyJson } from "./miner-client.ts";
import { publishMinerEvent } from "./miner-events.ts";
import { deviceOf, failNodes, type MinerPlaneDeps } from "./nodes.ts";

export type VerificationKind = "nodes" | "instance";

/** How long the validator's agents get to seal a challenge or check a proof. */
export const AGENT_WAIT_MS = 5 * 60_000;
/** Added to a proof's time window for the transfer and the miner's own overhead. */
export const PROOF_SLACK_MS = 10_000;

/** Starts (once) the verification of a node task or an instance in its Verifier object. */
export async function startVerification(
  config: Pick<Config, "VERIFIER">,
  job: { kind: VerificationKind; id: string },
): Promise<void> {
  const namespace = config.VERIFIER as DurableObjectNamespace<Verifier>;
  await namespace.get(namespace.idFromName(`${job.kind}:${job.id}`)).start(job.kind, job.id);
}

const agentTrouble =
  "the validator's GPU agents did not prepare the challenge in time (not a fault of this GPU); delete the nodes and register again";

/** Verifies the GPUs of one `POST /nodes` task; see the module comment. */
export async function verifyNodes(deps: MinerPlaneDeps, taskId: string): Promise<"verified" | "failed" | "none"> {
  const rows = await deps.db
    .select()
    .from(nodes)
    .where(and(eq(nodes.verificationTask, taskId), eq(nodes.status, "verifying")));
  if (rows.length === 0) return "none";
  const fail = async (reason: string) => {
    await failNodes(deps, taskId, reason);
    deps.log.info("node verification failed", { task_id: taskId, reason });
    return "failed" as const;
  };
  const profile = deps.config.GPU_PROOF_PROFILE;
  let challenge: NodeChallenge;
  let ciphertexts: Record<string, string>;
  try {
    challenge = await startNodeProof(deps, { devices: rows.map(deviceOf), profile, deadlineMs: AGENT_WAIT_MS });
    await deps.db.update(nodes).set({ seed: challenge.seed }).where(eq(nodes.verificationTask, taskId));
    ciphertexts = await challengeCiphertexts(deps, challenge, { timeoutMs: AGENT_WAIT_MS });
  } catch {
    return fail(agentTrouble);
  }
  // One request per verification server (a server's GPUs normally share one).
  const servers = new Map<string, typeof rows>();
  for (const row of rows) {
    const key = `${row.verificationHost}|${row.verificationPort}`;
    servers.set(key, [...(servers.get(key) ?? []), row]);
  }
  const answers: ProofResponse = {};
  for (const group of servers.values()) {
    const first = group[0];
    if (!first) continue;
    const uuids = new Set(group.map((row) => row.uuid));
    const part: NodeChallenge = { ...challenge, devices: challenge.devices.filter((d) => uuids.has(d.device.uuid)) };
    const windowMs = Math.max(...part.devices.map((d) => timeWindow(profile, d.device).maxMs));
    const reply = await callMiner(deps.config, {
      url: `${instanceBase({ host: first.verificationHost, port: first.verificationPort })}/challenge/proof`,
      body: {
        seed: challenge.seed,
        profile,
        ciphertexts: Object.fromEntries([...uuids].map((uuid) => [uuid, ciphertexts[uuid] ?? ""])),
      },
      timeoutMs: windowMs + PROOF_SLACK_MS,
      sign: true,
    });
    if (!reply.ok) return fail(`the proof challenge failed: ${reply.reason}`);
    const json = replyJson(reply);
    if (!json.ok) return fail(`the proof answer is malformed: ${json.reason}`);
    let response: ProofResponse;
    try {
      response = check(proofResponseSchema, json.value, "answer");
    } catch (error) {
      return fail(`the proof answer is malformed: ${(error as Error).message}`);
    }
    const judged = judgeProofResponse(part, response, reply.elapsedMs);
    if (!judged.ok) return fail(`GPU ${judged.uuid}: ${judged.reason} (answered in ${reply.elapsedMs} ms)`);
    Object.assign(answers, response);
  }
  try {
    const checks = await startProofChecks(deps, challenge, answers, { deadlineMs: AGENT_WAIT_MS });
    const verdict = await proofVerdict(deps, checks, { timeoutMs: AGENT_WAIT_MS });
    if (!verdict.valid) return fail(`the GPU proof did not check out (${verdict.reason})`);
  } catch {
    return fail(agentTrouble);
  }
  const verified = await deps.db
    .update(nodes)
    .set({ status: "verified", verifiedAt: deps.now(), verificationError: null })
    .where(and(eq(nodes.verificationTask, taskId), eq(nodes.status, "verifying")))
    .returning({ uuid: nodes.uuid, hotkey: nodes.minerHotkey });
  for (const node of verified) {
    await publishMinerEvent(deps, {
      reason: "gpu_verified",
      data: { gpu_id: node.uuid, miner_hotkey: node.hotkey },
      recipients: [node.hotkey],
    });
  }
  return "verified";
}

/** Verifies one instance (key exchange and ping); see the module comment. */
export async function verifyInstance(
  deps: MinerPlaneDeps,
  instanceId: string,
): Promise<"verified" | "removed" | "none"> {
  const [row] = await deps.db.select().from(instances).where(eq(instances.instanceId, instanceId));
  if (!row || row.verified) return "none";
  const remove = async (reason: string) => {
    await deps.db.update(instances).set({ verificationError: reason }).where(eq(instances.instanceId, instanceId));
    await removeInstance(deps, instanceId, `verification failed: ${reason}`);
    deps.log.info("instance verification failed", { instance_id: instanceId, reason });
    return "removed" as const;
  };
  const gpus = await deps.db
    .select()
    .from(nodes)
    .innerJoin(instanceNodes, eq(instanceNodes.nodeId, nodes.uuid))
    .where(eq(instanceNodes.instanceId, instanceId));
  const chosen = gpus[Math.floor(Math.random() * gpus.length)]?.nodes;
  if (!chosen) return remove("the instance has no GPUs");
  const profile = deps.config.GPU_PROOF_PROFILE;
  const device = deviceOf(chosen);
  const sessionKey = generateSessionKey();
  const seed = randomSeed().toString();
  let ciphertext: string;
  try {
    const job = await enqueueGpuJob(
      deps,
      "encrypt",
      { device, seed, profile, plaintext: toHex(sessionKey) },
      { deadlineMs: AGENT_WAIT_MS },
    );
    const done = await awaitGpuJob(deps, job.jobId, { timeoutMs: AGENT_WAIT_MS });
    const sealed = (done.result as { ciphertext?: unknown } | null)?.ciphertext;
    if (done.status !== "succeeded" || typeof sealed !== "string") throw new Error(done.status);
    ciphertext = sealed;
  } catch {
    return remove("the validator's GPU agents did not wrap the session key in time (not a fault of the instance)");
  }
  const exchange = await callMiner(deps.config, {
    url: `${instanceBase(row)}/_exchange`,
    body: { instance_id: instanceId, wrapped_key: { uuid: chosen.uuid, seed, profile, ciphertext } },
    timeoutMs: timeWindow(profile, device).maxMs + PROOF_SLACK_MS,
    sign: true,
  });
  if (!exchange.ok) return remove(`the key exchange failed: ${exchange.reason}`);
  const ping = await pingInstance(deps, row, sessionKey);
  if (!ping.ok) return remove(`the liveness ping after the key exchange failed: ${ping.reason}`);
  const now = deps.now();
  const sealedKey = await sealSessionKey(sessionKey, deps.config.WALLET_KEY, instanceId);
  const [updated] = await deps.db
    .update(instances)
    .set({ verified: true, sessionKey: sealedKey, lastVerifiedAt: now, verificationError: null, updatedAt: now })
    .where(and(eq(instances.instanceId, instanceId), eq(instances.verified, false)))
    .returning({ chuteId: instances.chuteId, hotkey: instances.minerHotkey });
  if (!updated) return "none";
  await deps.db.update(instanceAudit).set({ verifiedAt: now }).where(eq(instanceAudit.instanceId, instanceId));
  await refreshRouterQuietly(deps, updated.chuteId);
  await publishMinerEvent(deps, {
    reason: "instance_verified",
    data: { instance_id: instanceId, miner_hotkey: updated.hotkey },
    recipients: [updated.hotkey],
  });
  return "verified";
}
