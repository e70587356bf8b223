/**
 * @module GPU agents: registration of their Ed25519 keys and disabling them (admin acts,
 * also run by the operator script infra/gpu-agent/register.ts, hence no Worker types here).
 */
import { eq } from "drizzle-orm";
import { gpuAgents } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";
import { ApiError } from "../lib/errors.ts";

export type GpuAgent = typeof gpuAgents.$inferSelect;

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
