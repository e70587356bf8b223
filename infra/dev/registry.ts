/**
 * @module The local registry origin `npm start` (and the tests) run: Debian's
 * `docker-registry` (CNCF Distribution 2.8) on a free loopback port, filesystem storage,
 * no TLS and no authentication of its own (the Worker's `registry.` front is the gate,
 * as in production; see infra/registry/). `relativeurls` keeps upload locations relative,
 * so they point back through the front.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { stopChild } from "./children.ts";
import { freePort } from "./net.ts";

export interface LocalRegistry {
  url: string;
  stop(): Promise<void>;
}

/** Whether a command is on PATH. */
export function onPath(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

/** What builds need on this machine, and the command that installs what is missing. */
export function buildToolsMissing(): string[] {
  return ["buildah", "docker-registry"].filter((command) => !onPath(command));
}
export const BUILD_TOOLS_INSTALL = "apt-get install -y buildah docker-registry busybox-static";

export async function startLocalRegistry(options: { dataDir: string; port?: number }): Promise<LocalRegistry> {
  const port = options.port || (await freePort());
  mkdirSync(options.dataDir, { recursive: true });
  const configFile = path.join(options.dataDir, "config.yml");
  writeFileSync(
    configFile,
    [
      "version: 0.1",
      "log:",
      "  level: warn",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${path.join(options.dataDir, "storage")}`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      "  relativeurls: true",
      "",
    ].join("\n"),
  );
  const child: ChildProcess = spawn("docker-registry", ["serve", configFile], { stdio: ["ignore", "ignore", "pipe"] });
  const errors: string[] = [];
  child.stderr?.on("data", (chunk: Buffer) => errors.push(chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  const stop = () => stopChild(child);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      if ((await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) })).ok) return { url, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`docker-registry did not start at ${url}: ${errors.join("").slice(-2000)}`);
}
