/**
 * @module A worker thread that runs plans on the CPU reference, so a CPU-mode job never
 * blocks the agent's event loop (heartbeats, health checks and claims keep going).
 */
import { parentPort } from "node:worker_threads";
import { type Plan, runPlan } from "../../src/gpu-proof/engine.ts";

parentPort?.on("message", (message: { id: number; plan: Plan }) => {
  try {
    parentPort?.postMessage({ id: message.id, roots: runPlan(message.plan) });
  } catch (error) {
    parentPort?.postMessage({ id: message.id, error: (error as Error).message });
  }
});
