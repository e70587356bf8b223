/**
 * @module The local GPU agent `npm start` runs: a fresh Ed25519 key in a temporary
 * directory, registered in the platform's database as `dev-agent` (replacing the last
 * run's key), and the real agent (gpu-agent/) in CPU mode against the local API.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { generateKeyFile } from "../../gpu-agent/src/keys.ts";
import { registerGpuAgent } from "../../src/services/gpu-agents.ts";
import { stopChild } from "./children.ts";
import { withDatabase } from "./database.ts";

const AGENT_MAIN = fileURLToPath(new URL("../../gpu-agent/src/main.ts", import.meta.url));
export const DEV_AGENT_NAME = "dev-agent";

export interface DevAgent {
  agentId: string;
  healthUrl: string;
  stop(): Promise<void>;
}

export async function startDevAgent(options: {
  apiUrl: string;
  databaseUrl: string;
  healthPort: number;
}): Promise<DevAgent> {
  const dir = mkdtempSync(path.join(tmpdir(), "chutes-dev-agent-"));
  const keyFile = path.join(dir, "agent.pem");
  const publicKey = generateKeyFile(keyFile);
  const agent = await withDatabase(options.databaseUrl, (db) =>
    registerGpuAgent(db, { name: DEV_AGENT_NAME, publicKey, replace: true }),
  );
  const child: ChildProcess = spawn(process.execPath, [AGENT_MAIN], {
    stdio: ["ignore", "inherit", "inherit"],
    env: {
      ...process.env,
      CHUTES_API_URL: options.apiUrl,
      GPU_AGENT_ID: agent.agentId,
      GPU_AGENT_KEY_FILE: keyFile,
      GPU_AGENT_MODE: "cpu",
      GPU_AGENT_HEALTH_HOST: "127.0.0.1",
      GPU_AGENT_HEALTH_PORT: String(options.healthPort),
      LOG_LEVEL: process.env.GPU_AGENT_LOG_LEVEL ?? "warn",
    },
  });
  const healthUrl = `http://127.0.0.1:${options.healthPort}/healthz`;
  const stop = async () => {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      const res = await fetch(healthUrl, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return { agentId: agent.agentId, healthUrl, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`the GPU agent did not become healthy at ${healthUrl}`);
}
