/**
 * @module The agent's configuration, from the environment only (containers, systemd units
 * and `npm start` all set variables), validated once at start with zod.
 */
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { GPU_OPS, gpuOpSchema } from "../../src/schemas/gpu-proof.ts";

export const AGENT_VERSION = "0.1.0";

const DEFAULT_SIDECAR = fileURLToPath(new URL("../native/build/chutes-gpu-proof", import.meta.url));

const port = z.coerce.number().int().min(0).max(65535);

export const configSchema = z.object({
  /** Base URL of the API host, e.g. https://api.chutes.example (no trailing path). */
  CHUTES_API_URL: z.url({ protocol: /^https?$/ }).transform((url) => url.replace(/\/+$/, "")),
  /** The agent_id the API registered this agent's public key under. */
  GPU_AGENT_ID: z.uuid(),
  /** The Ed25519 private key, PKCS#8 PEM (`node src/main.ts keygen` writes one). */
  GPU_AGENT_KEY_FILE: z.string().min(1),
  /** `auto`: the CUDA sidecar when it finds GPUs, else the CPU reference; `gpu` insists on GPUs. */
  GPU_AGENT_MODE: z.enum(["auto", "gpu", "cpu"]).default("auto"),
  GPU_AGENT_SIDECAR: z.string().min(1).default(DEFAULT_SIDECAR),
  /** Jobs held at once (running plus waiting for a device); the agent claims no more. */
  GPU_AGENT_QUEUE_BOUND: z.coerce.number().int().min(1).max(1024).default(2),
  /** CPU mode only: how many jobs run in parallel (worker threads). */
  GPU_AGENT_CPU_WORKERS: z.coerce.number().int().min(1).max(64).default(1),
  /** CPU mode refuses profiles with larger matrices than this (a full profile would take weeks). */
  GPU_AGENT_CPU_MAX_N: z.coerce.number().int().min(64).default(1024),
  GPU_AGENT_OPS: z
    .string()
    .default(GPU_OPS.join(","))
    .transform((text) => text.split(",").map((op) => op.trim()))
    .pipe(z.array(gpuOpSchema).min(1)),
  GPU_AGENT_CLAIM_WAIT_MS: z.coerce.number().int().min(0).max(25_000).default(20_000),
  /** /healthz and /metrics listen here; loopback unless the operator opens it on purpose. */
  GPU_AGENT_HEALTH_HOST: z.string().default("127.0.0.1"),
  GPU_AGENT_HEALTH_PORT: port.default(9464),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
});

export type AgentConfig = z.output<typeof configSchema>;

export function loadConfig(env: NodeJS.ProcessEnv): AgentConfig {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join(".")}: ${issue.message}`);
    throw new Error(`invalid agent configuration:\n${lines.join("\n")}`);
  }
  return parsed.data;
}
