/**
 * @module The benchmark's plain-workerd mode (`BENCH_RUNTIME=workerd npm run bench:gateway`):
 * the gateway Worker (bundled by `wrangler deploy --dry-run`) and the bare fetch() Worker in
 * one `workerd serve` process, without wrangler dev's proxy hop (perf-anchors.md rows
 * `mA`/`mC`), over the same local services `npm start` runs (infra/dev/services.ts).
 * Durable Objects keep their SQLite storage on a scratch disk; the R2 binding, which the
 * gateway never touches, is a stand-in.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../../infra/dev/net.ts";
import { startLocalServices } from "../../infra/dev/services.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** wrangler.toml's top-level Durable Object bindings (binding name → class), so this never drifts from it. */
function topLevelDurableObjects(): Record<string, string> {
  const toml = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
  const top = toml.slice(0, toml.indexOf("\n[env."));
  const bindings: Record<string, string> = {};
  for (const match of top.matchAll(/^name = "([A-Z_0-9]+)"\nclass_name = "(\w+)"$/gm))
    bindings[match[1] as string] = match[2] as string;
  return bindings;
}
const DO_BINDINGS = topLevelDurableObjects();
const DO_CLASSES = [...new Set(Object.values(DO_BINDINGS))];

/** wrangler.toml's top-level [vars]. */
function topLevelVars(): Record<string, string> {
  const toml = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
  const block = toml.slice(toml.indexOf("\n[vars]") + 7, toml.indexOf("\n[", toml.indexOf("\n[vars]") + 7));
  const vars: Record<string, string> = {};
  for (const match of block.matchAll(/^([A-Z_0-9]+) = "([^"]*)"$/gm)) vars[match[1] as string] = match[2] as string;
  return vars;
}

const text = (value: string) => JSON.stringify(value);

export interface WorkerdTargets {
  url: string;
  barePort: number;
  databaseUrl: string;
  stop(): Promise<void>;
}

async function waitFor(port: number, host: string, pathName: string, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const r = http.request({ host: "127.0.0.1", port, path: pathName, headers: { host } }, (res) => {
        res.resume();
        resolve((res.statusCode ?? 500) < 500);
      });
      r.on("error", () => resolve(false));
      r.end();
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`workerd did not answer on ${port}:\n${output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

export async function startWorkerd(vars: Record<string, string>): Promise<WorkerdTargets> {
  const scratch = mkdtempSync(path.join(tmpdir(), "chutes-workerd-"));
  const services = await startLocalServices({
    scratchFrom: process.env.DATABASE_URL || undefined,
    redisUrl: process.env.REDIS_URL || undefined,
    pgliteDir: null,
    metagraphFile: path.join(scratch, "metagraph.json"),
  });
  const bundle = path.join(scratch, "bundle");
  const built = spawnSync(path.join(ROOT, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", bundle], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  if (built.status !== 0) throw new Error(`wrangler bundle failed: ${built.stderr}`);
  const port = await freePort();
  const barePort = await freePort();
  const all = { ...topLevelVars(), ...services.workerVars, ENVIRONMENT: "development", ...vars };
  const bindings = [
    ...Object.entries(all).map(([name, value]) => `(name = ${text(name)}, text = ${text(value)})`),
    ...Object.entries(DO_BINDINGS).map(
      ([name, cls]) => `(name = ${text(name)}, durableObjectNamespace = ${text(cls)})`,
    ),
    `(name = "BUCKET", kvNamespace = "r2-stand-in")`,
  ];
  const config = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "gateway", worker = .gateway),
    (name = "bare", worker = .bare),
    (name = "r2-stand-in", worker = .stub),
    (name = "internet", network = (allow = ["public", "private", "local"])),
    (name = "do-disk", disk = (path = ${text(path.join(scratch, "do"))}, writable = true)),
  ],
  sockets = [
    (name = "gateway", address = "127.0.0.1:${port}", http = (), service = "gateway"),
    (name = "bare", address = "127.0.0.1:${barePort}", http = (), service = "bare"),
  ],
);
const gateway :Workerd.Worker = (
  modules = [(name = "index.js", esModule = embed "bundle/index.js")],
  compatibilityDate = "2026-08-01",
  compatibilityFlags = ["nodejs_compat"],
  bindings = [${bindings.join(",\n    ")}],
  durableObjectNamespaces = [${DO_CLASSES.map((c) => `(className = ${text(c)}, uniqueKey = ${text(`chutes-${c}`)}, enableSql = true)`).join(", ")}],
  durableObjectStorage = (localDisk = "do-disk"),
  globalOutbound = "internet",
);
const bare :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = ${text(bareSource())})],
  compatibilityDate = "2026-08-01",
  bindings = [(name = "UPSTREAM", text = "http://127.0.0.1:1")],
  globalOutbound = "internet",
);
const stub :Workerd.Worker = (
  modules = [(name = "stub.js", esModule = "export default { fetch() { return new Response(null, { status: 404 }); } };")],
  compatibilityDate = "2026-08-01",
);
`;
  mkdirSync(path.join(scratch, "do"), { recursive: true });
  const configPath = path.join(scratch, "config.capnp");
  writeFileSync(configPath, config);
  const child: ChildProcess = spawn(
    path.join(ROOT, "node_modules/@cloudflare/workerd-linux-64/bin/workerd"),
    ["serve", "--experimental", configPath],
    { stdio: ["ignore", "ignore", "pipe"], detached: true },
  );
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString();
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
  });
  child.once("exit", (code) => {
    if (code) process.stderr.write(`workerd exited ${code}: ${stderr.slice(-3000)}\n`);
  });
  await waitFor(port, "api.localhost", "/developer_deposit", () => stderr).catch((error: unknown) => {
    if (child.pid) process.kill(-child.pid, "SIGKILL");
    throw error;
  });
  return {
    url: `http://127.0.0.1:${port}`,
    barePort,
    databaseUrl: services.postgres.url,
    stop: async () => {
      if (child.pid && child.exitCode === null) process.kill(-child.pid, "SIGKILL");
      await services.stop();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}

/** The bare Worker's source (test/bench/bare-proxy/worker.ts without its types). */
function bareSource(): string {
  return `export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const upstream = await fetch((request.headers.get("x-upstream") ?? env.UPSTREAM) + url.pathname, { method: request.method, headers: request.headers, body: request.body });
    return new Response(upstream.body, upstream);
  },
};`;
}
