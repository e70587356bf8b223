/**
 * @module `npm start`: the whole platform on one machine with nothing installed but npm.
 *
 * 1. Postgres: `DATABASE_URL` if set, else embedded PGlite persisted in `.data/pglite`;
 *    migrations are applied either way.
 * 2. Redis: the Upstash REST adapter over `REDIS_URL` if set, else the embedded twin.
 * 3. The dev chain (`CHAIN_MODE=file`) over `.data/metagraph.json` (a copy of
 *    infra/dev/metagraph.json made on first start; edit it, or `POST /neurons`).
 * 4. `wrangler dev`: the Worker, its Durable Objects and local R2 (state in `.data/wrangler`).
 * 5. The Worker's crons, fired at the minutes they match (wrangler dev never fires them),
 *    once at start, and the every-minute ones again whenever the dev metagraph changes
 *    through the dev chain's API.
 * 6. A GPU agent in CPU mode (infra/dev/gpu-agent.ts), registered with a fresh key.
 * 7. When `buildah` and `docker-registry` are installed: a local registry origin
 *    (infra/dev/registry.ts, storage in `.data/registry`) behind the Worker's `registry.`
 *    front, and an image builder (infra/dev/builder.ts, registered with a fresh key,
 *    buildah storage in `.data/buildah`). Otherwise it says how to install them and runs
 *    without builds (uploaded images stay pending).
 *
 * It prints the URLs once `/ping` answers, and Ctrl-C (or SIGTERM) stops every child.
 * Environment: PORT (8787), DATABASE_URL, REDIS_URL, PGLITE_DIR, WRANGLER_STATE_DIR,
 * DEV_METAGRAPH_FILE, PG_PORT / WS_PROXY_PORT / REDIS_REST_PORT / DEV_CHAIN_PORT /
 * PRICE_FEED_PORT (fixed ports for the local services), DEV_TAO_PRICE (the dev price feed's
 * TAO/USD, 400), GPU_AGENT_HEALTH_PORT (the agent's /healthz and /metrics; any free port by
 * default), REGISTRY_PORT (the local registry origin), REGISTRY_DIR and BUILDAH_DIR (their
 * storage).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type DevBuilder, startDevBuilder } from "./builder.ts";
import { cronMatches, devCrons, triggerCron } from "./cron.ts";
import { type DevAgent, startDevAgent } from "./gpu-agent.ts";
import { freePort } from "./net.ts";
import { BUILD_TOOLS_INSTALL, buildToolsMissing, type LocalRegistry, startLocalRegistry } from "./registry.ts";
import { type LocalServices, redact, startLocalServices } from "./services.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const READY_TIMEOUT_MS = 60_000;

function log(message: string): void {
  console.log(`[start] ${message}`);
}

function envPort(name: string, fallback?: number): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${name} must be a port number (got ${JSON.stringify(raw)})`);
  }
  return port;
}

function signalGroup(leader: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-leader, signal);
  } catch {
    // The group is already gone.
  }
}

async function waitForPing(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with code ${child.exitCode}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/ping`, { signal: AbortSignal.timeout(2000) });
      const body = await res.text();
      if (res.ok) return;
      log(`waiting: /ping answered ${res.status} ${body.slice(0, 200)}`);
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`the Worker did not answer /ping within ${READY_TIMEOUT_MS / 1000} s`);
}

async function main(): Promise<void> {
  const started = Date.now();
  const port = envPort("PORT", 8787) ?? 8787;
  let services: LocalServices | null = null;
  let wrangler: ChildProcess | null = null;
  let agent: DevAgent | null = null;
  let registry: LocalRegistry | null = null;
  let builder: DevBuilder | null = null;
  let stopping = false;
  let ticker: NodeJS.Timeout | null = null;
  let workerUp = false;
  const crons = devCrons(readFileSync(path.join(ROOT, "wrangler.toml"), "utf8"));
  const fire = async (cron: string): Promise<string> => {
    if (!workerUp) return "worker not up yet";
    const outcome = await triggerCron(port, cron).catch((error: Error) => `unreachable: ${error.message}`);
    if (outcome !== "ok" && outcome !== "running") log(`cron "${cron}": ${outcome}`);
    return outcome;
  };

  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    log("stopping");
    if (ticker) clearTimeout(ticker);
    await agent?.stop();
    await builder?.stop();
    if (wrangler?.pid) {
      const pid = wrangler.pid;
      const exited = wrangler.exitCode === null ? new Promise((r) => wrangler?.once("exit", r)) : Promise.resolve();
      // wrangler leads its own process group (detached), and its workerd processes are in
      // it: SIGTERM lets wrangler shut down, SIGKILL then removes anything left behind.
      signalGroup(pid, "SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      signalGroup(pid, "SIGKILL");
    }
    await registry?.stop();
    await services?.stop();
    log("stopped");
    process.exit(code);
  };
  process.on("SIGINT", () => void stop(0));
  process.on("SIGTERM", () => void stop(0));

  try {
    services = await startLocalServices({
      databaseUrl: process.env.DATABASE_URL || undefined,
      pgliteDir: process.env.PGLITE_DIR ?? path.join(ROOT, ".data", "pglite"),
      redisUrl: process.env.REDIS_URL || undefined,
      metagraphFile: process.env.DEV_METAGRAPH_FILE || path.join(ROOT, ".data", "metagraph.json"),
      // A registration through the dev chain is synced at once, not within the minute.
      onChainChange: async () => (await Promise.all(crons.filter((c) => c === "* * * * *").map(fire))).join(", "),
      ports: {
        postgres: envPort("PG_PORT"),
        wsProxy: envPort("WS_PROXY_PORT"),
        redisRest: envPort("REDIS_REST_PORT"),
        devChain: envPort("DEV_CHAIN_PORT"),
        priceFeed: envPort("PRICE_FEED_PORT"),
      },
      log,
    });

    const missing = buildToolsMissing();
    if (missing.length === 0) {
      registry = await startLocalRegistry({
        dataDir: process.env.REGISTRY_DIR || path.join(ROOT, ".data", "registry"),
        port: envPort("REGISTRY_PORT"),
      });
      log(`registry: docker-registry origin at ${registry.url}`);
    }
    const workerVars = {
      ...services.workerVars,
      ...(registry ? { REGISTRY_ORIGIN_URL: registry.url } : {}),
      // Test and benchmark hook: Worker vars that override wrangler.toml's (JSON object).
      ...(process.env.CHUTES_WORKER_VARS ? (JSON.parse(process.env.CHUTES_WORKER_VARS) as Record<string, string>) : {}),
    };
    const vars = Object.entries(workerVars).flatMap(([k, v]) => ["--var", `${k}:${v}`]);
    const stateDir = process.env.WRANGLER_STATE_DIR ?? path.join(ROOT, ".data", "wrangler");
    const args = [
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(await freePort()),
      "--persist-to",
      stateDir,
      "--show-interactive-dev-session=false",
      "--log-level",
      process.env.WRANGLER_LOG_LEVEL ?? "log",
      ...vars,
    ];
    const shown = args.map((a) =>
      a.startsWith("UPSTASH_REDIS_REST_TOKEN:") ? "UPSTASH_REDIS_REST_TOKEN:***" : redact(a),
    );
    log(`wrangler ${shown.join(" ")}`);
    wrangler = spawn(path.join(ROOT, "node_modules", ".bin", "wrangler"), args, {
      cwd: ROOT,
      stdio: ["ignore", "inherit", "inherit"],
      detached: true,
      env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" },
    });
    wrangler.once("exit", (code) => {
      if (!stopping) {
        log(`wrangler dev exited (${code}); shutting down`);
        void stop(code ?? 1);
      }
    });

    await waitForPing(port, wrangler);
    workerUp = true;
    await Promise.all(crons.map(fire));
    const tick = () => {
      // Fire at the start of each minute, as the platform does.
      ticker = setTimeout(
        () => {
          const now = new Date();
          for (const cron of crons) if (cronMatches(cron, now)) void fire(cron);
          tick();
        },
        60_000 - (Date.now() % 60_000),
      );
    };
    tick();
    agent = await startDevAgent({
      apiUrl: `http://127.0.0.1:${port}`,
      databaseUrl: services.postgres.url,
      healthPort: envPort("GPU_AGENT_HEALTH_PORT") || (await freePort()),
    });
    if (registry) {
      builder = await startDevBuilder({
        port,
        databaseUrl: services.postgres.url,
        storageDir: process.env.BUILDAH_DIR || path.join(ROOT, ".data", "buildah"),
      });
    }
    const builds = builder
      ? `  builder    buildah (vfs, chroot), pushing to registry.localhost:${port} (origin ${registry?.url})`
      : `  builder    NONE: ${missing.join(" and ")} not installed, so uploaded images stay pending build.\n` +
        `             To build images: ${BUILD_TOOLS_INSTALL} (Debian, as root), then restart.`;
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      [
        "",
        `chutes-edge is up (${seconds} s): postgres=${services.postgres.kind}, redis=${services.redis.kind}`,
        `  API        http://api.localhost:${port}   (also http://127.0.0.1:${port}, http://localhost:${port})`,
        `  LLM        http://llm.localhost:${port}/v1`,
        `  miners     ws://socket.localhost:${port}/`,
        `  events     ws://events.localhost:${port}/`,
        `  registry   http://registry.localhost:${port}`,
        `  dev chain  ${services.chain.url}   (metagraph: ${services.chain.metagraphFile})`,
        `  TAO price  ${services.priceFeed}   (dev feed; POST /price {"usd": …} to change it)`,
        `  chutes     http://{slug}.localhost:${port}/…`,
        `  GPU agent  CPU mode, ${agent.healthUrl} (and /metrics)`,
        builds,
        `  check      curl http://api.localhost:${port}/ping`,
        "Ctrl-C stops everything.",
        "",
      ].join("\n"),
    );
  } catch (error) {
    console.error(`[start] failed: ${(error as Error).stack ?? error}`);
    await stop(1);
  }
}

await main();
