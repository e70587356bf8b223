/**
 * @module `npm run bench:gateway`: the invocation gateway (auth, admission, lease,
 * sealed transport, response MAC, metering: everything on) against the simulated instance
 * called directly and against a bare `fetch()` pass-through Worker on the same runtime
 * (test/bench/bare-proxy), all measured in one run on this machine. Method as in
 * perf-anchors.md: closed-loop keep-alive Node clients, targets interleaved round by
 * round, medians across rounds.
 *
 * - JSON cord (`/echo`, ~250 bytes) at 1, 16 and 64 concurrent clients: requests/s, p50, p99;
 * - SSE cord (`/stream`, 200 events 1 ms apart, then [DONE]) at 1 and 16: time to first
 *   and to last byte;
 * - the LLM stream (vLLM `chat_stream`, 200 tokens 1 ms apart) through the gateway, whose
 *   events are scanned in JavaScript so the final chunk carries usage and cost: what that
 *   per-chunk work costs next to the natively relayed SSE.
 * Every target gets the same sealed envelope (the direct and bare targets get one sealed by
 * the client), so the instance's work is the same for all.
 *
 * BENCH_RUNTIME=workerd runs both Workers in one plain `workerd serve` process instead of
 * wrangler dev (./workerd-serve.ts).
 *
 * Env: BENCH_SECONDS (per measurement, default 4), BENCH_ROUNDS (default 2), BENCH_ONLY
 * (`json`, `sse` or `llm`: that part only).
 */
import { type ChildProcess, spawn } from "node:child_process";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../../infra/dev/net.ts";
import { deriveEnvelopeKeys, INVOKE_PATH, sealInvocation } from "../../src/lib/instance-envelope.ts";
import { registerCaller, seedChute, seedInstance } from "../support/gateway-fixture.ts";
import { startPlatform } from "../support/platform.ts";
import type { SimInstance } from "../support/sim-instance.ts";
import { startWorkerd } from "./workerd-serve.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);

interface Target {
  name: string;
  port: number;
  /** The request for one call: host header, path, headers, body (sealed per call where needed). */
  request(
    kind: "json" | "sse" | "llm",
  ): Promise<{ host: string; path: string; headers: Record<string, string>; body: string | Uint8Array }>;
}

interface Sample {
  ms: number;
  ttfb?: number;
  ok: boolean;
  /** The gateway's `Server-Timing` durations (ms by step), when it sent them. */
  steps?: Record<string, number>;
}

/** `auth;dur=1, lease;dur=0` → `{auth: 1, lease: 0}`. */
function parseServerTiming(header: string | string[] | undefined): Record<string, number> | undefined {
  if (typeof header !== "string") return undefined;
  const steps: Record<string, number> = {};
  for (const entry of header.split(",")) {
    const [name, ...params] = entry.trim().split(";");
    const dur = params.find((p) => p.trim().startsWith("dur="));
    if (name && dur) steps[name] = (steps[name] ?? 0) + Number(dur.trim().slice(4));
  }
  return steps;
}

function call(
  agent: http.Agent,
  port: number,
  req: Awaited<ReturnType<Target["request"]>>,
  check: (text: string) => boolean,
): Promise<Sample> {
  return new Promise((resolve) => {
    const started = performance.now();
    let ttfb: number | undefined;
    const r = http.request(
      {
        host: "127.0.0.1",
        port,
        path: req.path,
        method: "POST",
        agent,
        headers: { ...req.headers, host: `${req.host}:${port}` },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => {
          ttfb ??= performance.now() - started;
          chunks.push(c);
        });
        res.on("end", () =>
          resolve({
            ms: performance.now() - started,
            ttfb,
            ok: res.statusCode === 200 && check(Buffer.concat(chunks).toString()),
            steps: parseServerTiming(res.headers["server-timing"]),
          }),
        );
        res.on("error", () => resolve({ ms: performance.now() - started, ok: false }));
      },
    );
    r.on("error", () => resolve({ ms: performance.now() - started, ok: false }));
    r.end(req.body);
  });
}

const CHECKS = {
  json: (text: string) => text.includes('"ok":true'),
  sse: (text: string) => text.endsWith("data: [DONE]\n\n") && (text.match(/^data: \{"i"/gm)?.length ?? 0) === 200,
  llm: (text: string) => text.endsWith("data: [DONE]\n\n") && text.includes('"usage"'),
};

async function measure(
  target: Target,
  kind: "json" | "sse" | "llm",
  concurrency: number,
): Promise<{ samples: Sample[]; seconds: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const samples: Sample[] = [];
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const request = await target.request(kind);
        samples.push(await call(agent, target.port, request, CHECKS[kind]));
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { samples, seconds };
}

const pct = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
};
const median = (values: number[]) => pct(values, 50);

async function startBareProxy(upstream: string): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const dir = path.join(ROOT, "test/bench/bare-proxy");
  const child: ChildProcess = spawn(
    path.join(ROOT, "node_modules/.bin/wrangler"),
    [
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(await freePort()),
      "--log-level",
      "warn",
      "--var",
      `UPSTREAM:${upstream}`,
      "--show-interactive-dev-session=false",
    ],
    {
      cwd: dir,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" },
    },
  );
  child.stdout?.resume();
  child.stderr?.resume();
  const deadline = Date.now() + 60_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const r = http.request({ host: "127.0.0.1", port, path: "/_alive" }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      r.on("error", () => resolve(false));
      r.end();
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error("bare proxy did not start");
    await new Promise((r) => setTimeout(r, 300));
  }
  return {
    port,
    stop: async () => {
      if (child.pid) process.kill(-child.pid, "SIGTERM");
      await new Promise((r) => setTimeout(r, 500));
      if (child.pid && child.exitCode === null) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {}
      }
    },
  };
}

const RUNTIME = process.env.BENCH_RUNTIME === "workerd" ? "workerd" : "wrangler";

async function main(): Promise<void> {
  // Rate limiting stays on (a limit no run reaches), as every other part of admission.
  const vars = { INSTANCE_MAX_CONCURRENCY: "1024", LOG_LEVEL: "warn", RATE_LIMIT_COUNT: "1000000" };
  // The bare Worker runs under `wrangler dev --log-level warn`; so does the platform, else
  // wrangler's per-request log line (an HTTP call from workerd into wrangler's Node process
  // for every request) would be charged to the gateway alone.
  process.env.WRANGLER_LOG_LEVEL ??= "warn";
  const workerd = RUNTIME === "workerd" ? await startWorkerd(vars) : null;
  const platform = workerd ?? (await startPlatform({ scratchPrefix: "chutes_bench", vars }));
  const sims: SimInstance[] = [];
  let bare: { port: number; stop(): Promise<void> } | null = null;
  try {
    const owner = await registerCaller(platform.url, platform.databaseUrl);
    const user = await registerCaller(platform.url, platform.databaseUrl, { balanceUsd: 1_000_000 });
    const chute = await seedChute(platform.databaseUrl, owner);
    const model = `bench/model-${Date.now().toString(36)}`;
    const llm = await seedChute(platform.databaseUrl, owner, { template: "vllm", name: model });
    // One instance per chute, as in perf-anchors (one upstream).
    const sim = await seedInstance(platform.databaseUrl, chute.chuteId);
    const llmSim = await seedInstance(platform.databaseUrl, llm.chuteId, { model });
    sims.push(sim, llmSim);
    bare = workerd ? { port: workerd.barePort, stop: async () => {} } : await startBareProxy(sim.url);
    const keys = await deriveEnvelopeKeys(sim.sessionKey ?? new Uint8Array(), sim.instanceId ?? "");
    const bodies = {
      json: JSON.stringify({ hello: "world", n: 1 }),
      sse: JSON.stringify({ chunks: 200, interval_ms: 1 }),
      llm: JSON.stringify({
        model,
        stream: true,
        max_tokens: 200,
        interval_ms: 1,
        messages: [{ role: "user", content: "hi" }],
      }),
    };
    const sealed = async (kind: "json" | "sse") => {
      const s = await sealInvocation(keys, {
        invocationId: crypto.randomUUID(),
        method: "POST",
        path: kind === "json" ? "/echo" : "/stream",
        query: "",
        contentType: "application/json",
        body: new TextEncoder().encode(bodies[kind]),
      });
      return { path: INVOKE_PATH, headers: { ...s.headers, "x-upstream": sim.url }, body: s.body };
    };
    const auth = { authorization: `Bearer ${user.apiKey}`, "content-type": "application/json" };
    const platformPort = Number(new URL(platform.url).port);
    const targets: Target[] = [
      {
        name: "direct (sim instance)",
        port: sim.port,
        request: async (kind) => ({ host: "127.0.0.1", ...(await sealed(kind === "llm" ? "sse" : kind)) }),
      },
      {
        name: "bare fetch() Worker",
        port: bare.port,
        request: async (kind) => ({ host: "127.0.0.1", ...(await sealed(kind === "llm" ? "sse" : kind)) }),
      },
      {
        name: "gateway",
        port: platformPort,
        request: async (kind) =>
          kind === "llm"
            ? { host: "llm.localhost", path: "/v1/chat/completions", headers: auth, body: bodies.llm }
            : {
                host: `${chute.slug}.localhost`,
                path: kind === "json" ? "/echo" : "/stream",
                headers: auth,
                body: bodies[kind],
              },
      },
    ];
    // Warm-up: caches, router cold load, key derivation, JIT.
    for (const target of targets) {
      await measure(target, "json", 4);
      await measure(target, "sse", 2);
    }
    await measure(targets[2] as Target, "llm", 2);

    const rows = new Map<string, Row>();
    const runs: { kind: "json" | "sse" | "llm"; c: number; targets: Target[] }[] = [
      { kind: "json", c: 1, targets },
      { kind: "json", c: 16, targets },
      { kind: "json", c: 64, targets },
      { kind: "sse", c: 1, targets },
      { kind: "sse", c: 16, targets },
      { kind: "llm", c: 1, targets: [targets[2] as Target] },
      { kind: "llm", c: 16, targets: [targets[2] as Target] },
    ];
    const only = process.env.BENCH_ONLY;
    for (let round = 0; round < ROUNDS; round++) {
      for (const run of runs.filter((r) => !only || r.kind === only)) {
        for (const target of run.targets) {
          const { samples, seconds } = await measure(target, run.kind, run.c);
          const key = `${run.kind}|${run.c}|${target.name}`;
          const row = rows.get(key) ?? {
            target: target.name,
            kind: run.kind,
            c: run.c,
            rps: [],
            p50: [],
            p99: [],
            ttfb50: [],
            ttfb99: [],
            ttlb50: [],
            bad: 0,
            steps: {},
          };
          const good = samples.filter((s) => s.ok);
          row.bad += samples.length - good.length;
          // Mean per step (Server-Timing has 1 ms resolution: a median would round to 0 or 1).
          const timed = good.filter((s) => s.steps);
          for (const name of new Set(timed.flatMap((s) => Object.keys(s.steps ?? {})))) {
            const mean = timed.reduce((sum, s) => sum + (s.steps?.[name] ?? 0), 0) / Math.max(1, timed.length);
            row.steps[name] = [...(row.steps[name] ?? []), mean];
          }
          row.rps.push(good.length / seconds);
          row.p50.push(
            pct(
              good.map((s) => s.ms),
              50,
            ),
          );
          row.p99.push(
            pct(
              good.map((s) => s.ms),
              99,
            ),
          );
          row.ttfb50.push(
            pct(
              good.map((s) => s.ttfb ?? s.ms),
              50,
            ),
          );
          row.ttfb99.push(
            pct(
              good.map((s) => s.ttfb ?? s.ms),
              99,
            ),
          );
          row.ttlb50.push(
            pct(
              good.map((s) => s.ms),
              50,
            ),
          );
          rows.set(key, row);
          process.stderr.write(
            `round ${round + 1} ${run.kind} c=${run.c} ${target.name}: ${good.length} ok, ${samples.length - good.length} bad\n`,
          );
        }
      }
    }
    report([...rows.values()]);
  } finally {
    await bare?.stop();
    for (const s of sims) await s.close();
    await platform.stop();
  }
}

/** One target at one load: the figures of every round. */
interface Row {
  target: string;
  kind: string;
  c: number;
  rps: number[];
  p50: number[];
  p99: number[];
  ttfb50: number[];
  ttfb99: number[];
  ttlb50: number[];
  bad: number;
  /** Mean `Server-Timing` duration per step, one per round. */
  steps: Record<string, number[]>;
}

function report(rows: Row[]): void {
  const m = (values: number[]) => median(values);
  const f = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : "–");
  const find = (kind: string, c: number, target: string) =>
    rows.find((r) => r.kind === kind && r.c === c && r.target.startsWith(target));
  console.log(
    `\ngateway benchmark: ${ROUNDS} interleaved rounds × ${SECONDS} s per target and load; medians across rounds`,
  );
  console.log(
    `${os.cpus().length} CPUs, node ${process.version}, ${RUNTIME === "workerd" ? "one plain workerd serve process" : "wrangler dev (local mode)"}, postgres=${process.env.DATABASE_URL ? "real" : "pglite"}, redis=${process.env.REDIS_URL ? "real" : "embedded"}\n`,
  );
  console.log("JSON cord (/echo)\n");
  console.log("| target | clients | req/s | p50 ms | p99 ms | +p50 ms vs direct | +p99 ms vs direct | failed |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (const r of rows.filter((r) => r.kind === "json")) {
    const direct = find("json", r.c, "direct");
    console.log(
      `| ${r.target} | ${r.c} | ${f(m(r.rps), 0)} | ${f(m(r.p50))} | ${f(m(r.p99))} | ${direct ? f(m(r.p50) - m(direct.p50)) : "–"} | ${direct ? f(m(r.p99) - m(direct.p99)) : "–"} | ${r.bad} |`,
    );
  }
  console.log("\nSSE (200 events), and the LLM stream through the gateway (JS scan of every event)\n");
  console.log("| target | streams | TTFB p50 | TTFB p99 | TTLB p50 | +TTFB p50 | +TTFB p99 | +TTLB p50 | failed |");
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const r of rows.filter((r) => r.kind !== "json")) {
    const direct = find("sse", r.c, "direct");
    const name = r.kind === "llm" ? "gateway, LLM stream (usage+cost)" : r.target;
    console.log(
      `| ${name} | ${r.c} | ${f(m(r.ttfb50))} | ${f(m(r.ttfb99))} | ${f(m(r.ttlb50))} | ${direct ? f(m(r.ttfb50) - m(direct.ttfb50)) : "–"} | ${direct ? f(m(r.ttfb99) - m(direct.ttfb99)) : "–"} | ${direct ? f(m(r.ttlb50) - m(direct.ttlb50)) : "–"} | ${r.bad} |`,
    );
  }
  const stepped = rows.filter((r) => Object.keys(r.steps).length > 0);
  if (stepped.length > 0) {
    const names = [...new Set(stepped.flatMap((r) => Object.keys(r.steps)))];
    console.log("\nWhere the gateway's time goes (mean `Server-Timing` ms per call, 1 ms resolution)\n");
    console.log(`| call | load | ${names.join(" | ")} |`);
    console.log(`|---|---|${names.map(() => "---|").join("")}`);
    for (const r of stepped) {
      console.log(
        `| ${r.kind} | ${r.c} | ${names.map((n) => (r.steps[n] ? f(m(r.steps[n] as number[])) : "–")).join(" | ")} |`,
      );
    }
  }
  const ratio = (c: number) => {
    const g = find("json", c, "gateway");
    const a = find("json", c, "bare");
    return g && a ? m(g.rps) / m(a.rps) : Number.NaN;
  };
  const g1 = find("json", 1, "gateway");
  const d1 = find("json", 1, "direct");
  const g16 = find("sse", 16, "gateway");
  const d16 = find("sse", 16, "direct");
  console.log(`\nTargets (issue 7, set for wrangler dev; this run: ${RUNTIME})\n`);
  console.log("| metric | measured | target |");
  console.log("|---|---|---|");
  if (g1 && d1) {
    console.log(`| JSON added latency, 1 client, p50 | ${f(m(g1.p50) - m(d1.p50))} ms | ≤ 3 ms |`);
    console.log(`| JSON added latency, 1 client, p99 | ${f(m(g1.p99) - m(d1.p99))} ms | ≤ 12 ms |`);
  }
  if (g16 && d16) {
    console.log(`| SSE added first byte, 16 streams, p50 | ${f(m(g16.ttfb50) - m(d16.ttfb50))} ms | ≤ 15 ms |`);
    console.log(`| SSE added first byte, 16 streams, p99 | ${f(m(g16.ttfb99) - m(d16.ttfb99))} ms | ≤ 75 ms |`);
    console.log(`| SSE added last byte, 16 streams, p50 | ${f(m(g16.ttlb50) - m(d16.ttlb50))} ms | ≤ 20 ms |`);
  }
  console.log(`| JSON throughput gateway / bare proxy, 16 clients | ${f(ratio(16))} | ≥ 0.45 |`);
  console.log(`| JSON throughput gateway / bare proxy, 1 / 64 clients | ${f(ratio(1))} / ${f(ratio(64))} | |`);
}

await main();
