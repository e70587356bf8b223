/**
 * @module Runs the real GPU agent (gpu-agent/src/main.ts) as a child process for Node-side
 * tests: a fresh key, the environment it is configured by, its output kept for failures,
 * and helpers to read /healthz and to kill it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { generateKeyFile } from "../../gpu-agent/src/keys.ts";
import { freePort } from "../../infra/dev/net.ts";

const MAIN = fileURLToPath(new URL("../../gpu-agent/src/main.ts", import.meta.url));

export interface AgentKey {
  keyFile: string;
  publicKey: string;
}

const scratchDirs: string[] = [];

/** A fresh temporary directory, removed by `removeScratch`. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  scratchDirs.push(dir);
  return dir;
}

/** Removes every directory `scratchDir` made (keys, fake sidecars). */
export function removeScratch(): void {
  for (const dir of scratchDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function newAgentKey(): AgentKey {
  const keyFile = path.join(scratchDir("chutes-agent-test-"), "agent.pem");
  return { keyFile, publicKey: generateKeyFile(keyFile) };
}

export interface RunningAgent {
  child: ChildProcess;
  healthUrl: string;
  output: string[];
  health(): Promise<{ status: number; body: Record<string, unknown> }>;
  metrics(): Promise<string>;
  /** Resolves once /healthz answers (any status). */
  ready(timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function spawnAgent(env: Record<string, string>): Promise<RunningAgent> {
  const port = await freePort();
  const output: string[] = [];
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, GPU_AGENT_HEALTH_PORT: String(port), GPU_AGENT_CLAIM_WAIT_MS: "2000", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  const base = `http://127.0.0.1:${port}`;
  const agent: RunningAgent = {
    child,
    healthUrl: `${base}/healthz`,
    output,
    async health() {
      const res = await fetch(`${base}/healthz`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    metrics: async () => (await fetch(`${base}/metrics`)).text(),
    async ready(timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        if (child.exitCode !== null) throw new Error(`agent exited (${child.exitCode}):\n${output.join("")}`);
        try {
          await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1000) });
          return;
        } catch {
          await new Promise((r) => setTimeout(r, 150));
        }
      }
      throw new Error(`agent not up in ${timeoutMs} ms:\n${output.join("")}`);
    },
    async kill(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill(signal);
      await exited;
    },
  };
  return agent;
}
