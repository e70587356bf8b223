/**
 * @module `npm run bench:auth`: what authentication costs per request, measured through
 * a real `npm start` (wrangler dev, workerd, the local Postgres and Redis; DATABASE_URL /
 * REDIS_URL pick real servers) by a closed-loop client at concurrency 1.
 *
 * Variants, interleaved round by round so drift hits all alike:
 * - baseline `GET /developer_deposit`: no auth, no I/O (the runtime and wrangler's hop);
 * - baseline `GET /ping`: one Postgres and one Redis round trip, no auth;
 * - `GET /users/me` signed by a hotkey: signature verify, replay-cache SET NX, user by hotkey;
 * - `GET /users/me` with an API key whose lookup is cached in Redis (one GET);
 * - `GET /users/me` with a never-used API key (cache miss: Postgres load, SET NX, last_used UPDATE).
 * All `/users/me` variants run the same handler (one profile query), so their differences
 * are the authentication paths. Figures are printed with ratios to the first baseline.
 */
import http from "node:http";
import os from "node:os";
import { cliHeaders, randomHotkey, type TestHotkey } from "../support/chutes-cli.ts";
import { startPlatform } from "../support/platform.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const PER_ROUND = Number(process.env.BENCH_REQUESTS ?? 60);
const WARMUP = 30;

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

interface Reply {
  status: number;
  body: string;
}

function send(
  base: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
) {
  const url = new URL(path, base);
  return new Promise<Reply>((resolve, reject) => {
    const req = http.request(
      url,
      { method: init.method ?? "GET", agent, headers: { ...init.headers, host: `api.localhost:${url.port}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (init.body) req.write(init.body);
    req.end();
  });
}

async function expectOk(reply: Promise<Reply>, what: string): Promise<Record<string, unknown>> {
  const { status, body } = await reply;
  if (status !== 200) throw new Error(`${what}: ${status} ${body}`);
  return JSON.parse(body) as Record<string, unknown>;
}

type Request = { path: string; headers?: Record<string, string> };

interface Variant {
  name: string;
  /** The next request to time (prepared outside the timed section). */
  next(): Request;
}

async function main(): Promise<void> {
  const platform = await startPlatform({ scratchPrefix: "chutes_bench" });
  try {
    const base = platform.url;
    const hotkey: TestHotkey = randomHotkey();
    const register = JSON.stringify({ username: `bench_${Date.now().toString(36).slice(-8)}`, coldkey: hotkey.ss58 });
    await expectOk(
      send(base, "/users/register", {
        method: "POST",
        body: register,
        headers: await cliHeaders(hotkey, { body: register }),
      }),
      "register",
    );
    const mintKey = async (name: string) => {
      const body = JSON.stringify({ name, admin: true });
      const key = await expectOk(
        send(base, "/api_keys/", { method: "POST", body, headers: await cliHeaders(hotkey, { body }) }),
        "create key",
      );
      return String(key.secret_key);
    };

    const total = WARMUP + ROUNDS * PER_ROUND;
    console.error(`preparing: ${total} signed requests and ${total} fresh API keys …`);
    const signed: Record<string, string>[] = [];
    for (let i = 0; i < total; i++) signed.push(await cliHeaders(hotkey, { purpose: "me" }));
    const freshKeys: string[] = [];
    for (let i = 0; i < total; i++) freshKeys.push(await mintKey(`cold ${i}`));
    const cachedKey = await mintKey("cached");

    const variants: Variant[] = [
      { name: "GET /developer_deposit (baseline: no auth, no I/O)", next: () => ({ path: "/developer_deposit" }) },
      { name: "GET /ping (baseline: Postgres + Redis round trip)", next: () => ({ path: "/ping" }) },
      {
        name: "GET /users/me, hotkey signature",
        next: () => ({ path: "/users/me", headers: signed.pop() }),
      },
      {
        name: "GET /users/me, API key cached",
        next: () => ({ path: "/users/me", headers: { authorization: `Basic ${cachedKey}` } }),
      },
      {
        name: "GET /users/me, API key cold (cache miss)",
        next: () => ({ path: "/users/me", headers: { authorization: `Basic ${freshKeys.pop()}` } }),
      },
    ];

    const timings = new Map<string, number[]>(variants.map((v) => [v.name, []]));
    const run = async (variant: Variant, count: number, record: boolean) => {
      for (let i = 0; i < count; i++) {
        const request = variant.next();
        const started = performance.now();
        const reply = await send(base, request.path, { headers: request.headers });
        const elapsed = performance.now() - started;
        if (reply.status !== 200) throw new Error(`${variant.name}: ${reply.status} ${reply.body}`);
        if (record) timings.get(variant.name)?.push(elapsed);
      }
    };
    for (const variant of variants) await run(variant, WARMUP, false);
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of variants) await run(variant, PER_ROUND, true);
    }
    report(timings, variants[0]?.name ?? "");
  } finally {
    agent.destroy();
    await platform.stop();
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function report(timings: Map<string, number[]>, baselineName: string): void {
  const stats = [...timings].map(([name, samples]) => {
    const sorted = [...samples].sort((a, b) => a - b);
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    return {
      name,
      n: samples.length,
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      mean,
    };
  });
  const baseline = stats.find((s) => s.name === baselineName);
  const services = `postgres=${process.env.DATABASE_URL ? "real" : "pglite"}, redis=${process.env.REDIS_URL ? "real" : "embedded"}`;
  console.log(
    `\nauth benchmark: ${ROUNDS} interleaved rounds × ${PER_ROUND} sequential requests per variant (c=1), wrangler dev`,
  );
  console.log(`${os.cpus().length} CPUs, node ${process.version}, ${services}\n`);
  console.log("| variant | n | p50 ms | p90 ms | p99 ms | mean ms | req/s | p50 × baseline | +p50 ms |");
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const s of stats) {
    const ratio = baseline ? (s.p50 / baseline.p50).toFixed(2) : "–";
    const added = baseline ? (s.p50 - baseline.p50).toFixed(2) : "–";
    console.log(
      `| ${s.name} | ${s.n} | ${s.p50.toFixed(2)} | ${s.p90.toFixed(2)} | ${s.p99.toFixed(2)} | ${s.mean.toFixed(2)} | ${(1000 / s.mean).toFixed(0)} | ${ratio} | ${added} |`,
    );
  }
}

await main();
