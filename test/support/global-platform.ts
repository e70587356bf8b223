/**
 * @module Global setup of the e2e lane: runs the real `npm start` launcher on a free
 * port (its own scratch database on DATABASE_URL's server, or in-memory PGlite; its own
 * wrangler state), waits until it reports ready, and stops it with SIGINT afterwards,
 * checking that it exits cleanly. Set E2E_BASE_URL to test an already running platform.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { createScratchDatabase, type RunningPostgres } from "../../infra/dev/postgres.ts";
import "./provided.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.E2E_BASE_URL) {
    project.provide("platformUrl", process.env.E2E_BASE_URL);
    project.provide("platformDatabaseUrl", process.env.DATABASE_URL ?? "");
    project.provide("devChainUrl", process.env.E2E_DEV_CHAIN_URL ?? "");
    return async () => {};
  }
  const port = await freePort();
  const devChainPort = await freePort();
  const scratch: RunningPostgres | null = process.env.DATABASE_URL
    ? await createScratchDatabase(process.env.DATABASE_URL, "chutes_e2e")
    : null;
  const stateDir = mkdtempSync(path.join(tmpdir(), "chutes-e2e-"));
  const output: string[] = [];
  const child: ChildProcess = spawn(process.execPath, [path.join(ROOT, "infra/dev/start.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      DATABASE_URL: scratch?.url ?? "",
      PGLITE_DIR: path.join(stateDir, "pglite"),
      WRANGLER_STATE_DIR: path.join(stateDir, "wrangler"),
      DEV_METAGRAPH_FILE: path.join(stateDir, "metagraph.json"),
      DEV_CHAIN_PORT: String(devChainPort),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      output.push(text);
      if (text.includes("chutes-edge is up")) resolve();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
    child.once("exit", (code) => reject(new Error(`npm start exited early (${code}):\n${output.join("")}`)));
  });
  let readyTimer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ready,
      new Promise((_, reject) => {
        readyTimer = setTimeout(() => reject(new Error(`npm start not ready in 90 s:\n${output.join("")}`)), 90_000);
      }),
    ]);
  } catch (error) {
    child.kill("SIGKILL");
    await scratch?.close().catch(() => {});
    throw error;
  } finally {
    clearTimeout(readyTimer);
  }
  project.provide("platformUrl", `http://127.0.0.1:${port}`);
  project.provide("platformDatabaseUrl", scratch?.url ?? "");
  project.provide("devChainUrl", `http://127.0.0.1:${devChainPort}`);

  return async () => {
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGINT");
    let stopTimer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      exited,
      new Promise<"timeout">((r) => {
        stopTimer = setTimeout(() => r("timeout"), 15_000);
      }),
    ]);
    clearTimeout(stopTimer);
    if (code === "timeout") child.kill("SIGKILL");
    await scratch?.close().catch(() => {});
    rmSync(stateDir, { recursive: true, force: true });
    if (code !== 0)
      throw new Error(`npm start did not stop cleanly on SIGINT (${code}):\n${output.join("").slice(-4000)}`);
  };
}
