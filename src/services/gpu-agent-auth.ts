/**
 * @module Authentication of every request a GPU agent makes: the agents' scheme of the
 * shared service credential (src/services/service-auth.ts), keys in `gpu_agents`, replay
 * cache `gpu_agent:nonce:{agent_id}:{nonce}`.
 */
import { eq } from "drizzle-orm";
import { gpuAgents } from "../db/schema.ts";
import { AGENT_SCHEME } from "../gpu-proof/agent-auth.ts";
import type { Deps } from "../lib/deps.ts";
import type { GpuAgent } from "./gpu-agents.ts";
import { authenticateService, type ServiceRequest } from "./service-auth.ts";

/** The agent behind a signed request, or 401/403. */
export function authenticateAgent(deps: Deps, request: ServiceRequest): Promise<GpuAgent> {
  return authenticateService(
    deps,
    {
      scheme: AGENT_SCHEME,
      noun: "GPU agent",
      noncePrefix: "gpu_agent",
      find: async (id) => (await deps.db.select().from(gpuAgents).where(eq(gpuAgents.agentId, id)))[0] ?? null,
      touch: async (id) => {
        await deps.db.update(gpuAgents).set({ lastSeenAt: deps.now() }).where(eq(gpuAgents.agentId, id));
      },
    },
    request,
  );
}
