/**
 * @module Authentication of every request a GPU agent makes: Ed25519 signature with the
 * registered key, clock window, and replay.
 *
 * Replay cache: Redis `gpu_agent:nonce:{agent_id}:{nonce}` (SET NX, TTL 2 × the clock
 * window plus a minute): a nonce seen inside the window is refused, and a request outside
 * the window is refused by its timestamp, so the cache never needs to remember longer.
 */
import { eq } from "drizzle-orm";
import { gpuAgents } from "../db/schema.ts";
import { AGENT_CLOCK_SKEW_S, AGENT_HEADERS, AGENT_NONCE, verifyAgentSignature } from "../gpu-proof/agent-auth.ts";
import type { Deps } from "../lib/deps.ts";
import { ApiError } from "../lib/errors.ts";
import type { GpuAgent } from "./gpu-agents.ts";

export const NONCE_TTL_S = 2 * AGENT_CLOCK_SKEW_S + 60;
export const nonceKey = (agentId: string, nonce: string) => `gpu_agent:nonce:${agentId}:${nonce}`;

export interface AgentRequest {
  method: string;
  /** Path and query as requested. */
  target: string;
  headers: Headers;
  body: Uint8Array;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The agent behind a signed request, or 401/403. Nothing is written unless every check
 * passes, and then only the nonce (so a replay of this very request fails) and last_seen_at.
 */
export async function authenticateAgent(deps: Deps, request: AgentRequest): Promise<GpuAgent> {
  const header = (name: string) => request.headers.get(name) ?? "";
  const agentId = header(AGENT_HEADERS.agentId);
  const timestampText = header(AGENT_HEADERS.timestamp);
  const nonce = header(AGENT_HEADERS.nonce);
  const signature = header(AGENT_HEADERS.signature);
  if (!UUID.test(agentId) || !/^\d{1,12}$/.test(timestampText) || !AGENT_NONCE.test(nonce) || !signature) {
    throw new ApiError(
      "unauthorized",
      `Agent requests must be signed: ${Object.values(AGENT_HEADERS).join(", ")} (see docs/protocols.md).`,
    );
  }
  const [agent] = await deps.db.select().from(gpuAgents).where(eq(gpuAgents.agentId, agentId));
  if (!agent) throw new ApiError("unauthorized", "Unknown GPU agent.");
  const timestamp = Number(timestampText);
  const valid = await verifyAgentSignature(agent.publicKey, signature, {
    method: request.method,
    target: request.target,
    timestamp,
    nonce,
    body: request.body,
  });
  if (!valid) throw new ApiError("unauthorized", "The request signature does not verify with this agent's key.");
  const skew = Math.abs(deps.now().getTime() / 1000 - timestamp);
  if (skew > AGENT_CLOCK_SKEW_S) {
    throw new ApiError("unauthorized", `The request timestamp is ${Math.round(skew)} s away from the server clock.`);
  }
  if (agent.disabled) throw new ApiError("forbidden", "This GPU agent is disabled.");
  const fresh = await deps.redis.set(nonceKey(agentId, nonce), "1", { nx: true, ex: NONCE_TTL_S });
  if (fresh === null) throw new ApiError("unauthorized", "This request was already received (replayed nonce).");
  await deps.db.update(gpuAgents).set({ lastSeenAt: deps.now() }).where(eq(gpuAgents.agentId, agentId));
  return agent;
}
