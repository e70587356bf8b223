/**
 * @module Runs the real `npm start` launcher as a child process on a free port: its own
 * scratch database on DATABASE_URL's server (or in-memory PGlite), its own wrangler
 * state, REDIS_URL passed through. Used by the e2e lane's global setup and by the
 * benchmarks, which need the platform exactly as a developer runs it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../../infra/dev/net.ts";
import { createScratchDatabase, type RunningPostgres } from "../../infra/dev/postgres.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface RunningPlatform {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Direct Postgres URL of its database (its scratch database, or its embedded PGlite). */
  databaseUrl: string;
  /** Base URL of its dev chain (infra/dev/dev-chain.ts). */
  devChainUrl: string;
  /** The launcher's process id (wrangler and workerd run below it). */
  pid: number;
  /** Stops it with SIGINT; rejects if it does not stop cleanly. */
  stop(): Promise<void>;
}

export async function startPlatform(
  options: { readyTimeoutMs?: number; scratchPrefix?: string; vars?: Record<string, string> } = {},
): Promise<RunningPlatform> {
  const port = await freePort();
  const devChainPort = await freePort();
  const scratch: RunningPostgres | null = process.env.DATABASE_URL
    ? await createScratchDatabase(process.env.DATABASE_URL, options.scratchPrefix ?? "chutes_e2e")
    : null;
  // With embedded PGlite the tests reach the platform's database on a port chosen here.
  const pgPort = scratch ? undefined : await freePort();
  const databaseUrl = scratch?.url ?? `postgres://postgres:postgres@127.0.0.1:${pgPort}/postgres`;
  const stateDir = mkdtempSync(path.join(tmpdir(), "chutes-platform-"));
  const output: string[] = [];
  const child: ChildProcess = spawn(process.execPath, [path.join(ROOT, "infra/dev/start.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      DATABASE_URL: scratch?.url ?? "",
      PG_PORT: pgPort === undefined ? "" : String(pgPort),
      PGLITE_DIR: path.join(stateDir, "pglite"),
      WRANGLER_STATE_DIR: path.join(stateDir, "wrangler"),
      DEV_METAGRAPH_FILE: path.join(stateDir, "metagraph.json"),
      DEV_CHAIN_PORT: String(devChainPort),
      REGISTRY_DIR: path.join(stateDir, "registry"),
      BUILDAH_DIR: path.join(stateDir, "buildah"),
      ...(options.vars ? { CHUTES_WORKER_VARS: JSON.stringify(options.vars) } : {}),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const cleanup = async () => {
    await scratch?.close().catch(() => {});
    rmSync(stateDir, { recursive: true, force: true });
  };
  // PLATFORM_LOG_FILE: also append the platform's output there (debugging a test or benchmark).
  const logFile = process.env.PLATFORM_LOG_FILE;
  const keep = (text: string) => {
    output.push(text);
    if (logFile) appendFileSync(logFile, text);
  };
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      const text = chunk.toString();
      keep(text);
      if (text.includes("chutes-edge is up")) resolve();
    });
    child.stderr?.on("data", (chunk: Buffer) => keep(chunk.toString()));
    child.once("exit", (code) => reject(new Error(`npm start exited early (${code}):\n${output.join("")}`)));
  });
  const timeoutMs = options.readyTimeoutMs ?? 90_000;
  let readyTimer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ready,
      new Promise((_, reject) => {
        readyTimer = setTimeout(
          () => reject(new Error(`npm start not ready in ${timeoutMs / 1000} s:\n${output.join("")}`)),
          timeoutMs,
        );
      }),
    ]);
  } catch (error) {
    child.kill("SIGKILL");
    await cleanup();
    throw error;
  } finally {
    clearTimeout(readyTimer);
  }

  return {
    url: `http://127.0.0.1:${port}`,
    databaseUrl,
    devChainUrl: `http://127.0.0.1:${devChainPort}`,
    pid: child.pid ?? 0,
    async stop() {
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
      await cleanup();
      if (code !== 0) {
        throw new Error(`npm start did not stop cleanly on SIGINT (${code}):\n${output.join("").slice(-4000)}`);
      }
    },
  };
}
