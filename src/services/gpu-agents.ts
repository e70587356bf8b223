/**
 * @module GPU agents: registration of their Ed25519 keys (an admin act) and the
 * authentication of every request an agent makes (signature, clock window, replay).
 *
 * Replay cache: Redis `gpu_agent:nonce:{agent_id}:{nonce}` (SET NX, TTL 2 × the clock
 * window plus a minute): a nonce seen inside the window is refused, and a request outside
 * the window is refused by its timestamp, so the cache never needs to remember longer.
 */
import { eq } from "drizzle-orm";
import type { AnyDatabase } from "../db/client.ts";
import { gpuAgents } from "../db/schema.ts";
import { AGENT_CLOCK_SKEW_S, AGENT_HEADERS, AGENT_NONCE, verifyAgentSignature } from "../gpu-proof/agent-auth.ts";
import type { Deps } from "../lib/deps.ts";
import { ApiError } from "../lib/errors.ts";

export type GpuAgent = typeof gpuAgents.$inferSelect;

export const NONCE_TTL_S = 2 * AGENT_CLOCK_SKEW_S + 60;
export const nonceKey = (agentId: string, nonce: string) => `gpu_agent:nonce:${agentId}:${nonce}`;

export interface AgentRegistration {
  name: string;
  publicKey: string;
  /** Replace the key of an agent with this name instead of refusing (operators rotating keys). */
  replace?: boolean;
}

/** Registers an agent's public key; a name or key already in use is a conflict unless `replace`. */
export async function registerGpuAgent(db: AnyDatabase, input: AgentRegistration): Promise<GpuAgent> {
  const values = { agentId: crypto.randomUUID(), name: input.name, publicKey: input.publicKey };
  const insert = db.insert(gpuAgents).values(values);
  const rows = input.replace
    ? await insert
        .onConflictDoUpdate({
          target: gpuAgents.name,
          set: { publicKey: input.publicKey, disabled: false },
        })
        .returning()
    : await insert.onConflictDoNothing().returning();
  const row = rows[0];
  if (!row) throw new ApiError("conflict", "An agent with this name or public key is already registered.");
  return row;
}

export async function setGpuAgentDisabled(db: AnyDatabase, agentId: string, disabled: boolean): Promise<GpuAgent> {
  const [row] = await db.update(gpuAgents).set({ disabled }).where(eq(gpuAgents.agentId, agentId)).returning();
  if (!row) throw new ApiError("not_found", `No GPU agent ${agentId}.`);
  return row;
}

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
