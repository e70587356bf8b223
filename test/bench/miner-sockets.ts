/**
 * @module `npm run bench:miner-sockets`: 500 real miner WebSockets on the one miner hub,
 * through a real `npm start` (wrangler dev, workerd; DATABASE_URL / REDIS_URL pick real
 * servers). Every socket is a registered miner hotkey with its own signed upgrade
 * (purpose `sockets`: signature check, replay cache, metagraph lookup).
 *
 * Measured:
 * - connect time per socket (upgrade sent → `hello` frame), p50/p99, and the total, at
 *   `BENCH_CONNECT_CONCURRENCY` (default 25) connects in flight;
 * - broadcast fan-out: a miner deletes a GPU (`DELETE /nodes/{uuid}`), which publishes a
 *   `node_deleted` event to every miner; latency per socket = DELETE sent → frame received,
 *   p50/p99 over `BENCH_BROADCASTS` (default 20) broadcasts, and the spread (first to last
 *   socket) per broadcast. Baseline in the same run: the same broadcasts with 1 socket;
 * - memory: RSS of the workerd processes at start; after as many signed miner requests as
 *   there will be sockets (baseline: the heap the authentication path grows); with every
 *   socket open; after the broadcasts; and after closing them all.
 */
import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import WebSocket from "ws";
import { withDatabase } from "../../infra/dev/database.ts";
import { metagraphNodes } from "../../src/db/schema.ts";
import { cliHeaders, randomHotkey, type TestHotkey } from "../support/chutes-cli.ts";
import { seedNodes } from "../support/miner-seed.ts";
import { startPlatform } from "../support/platform.ts";

const SOCKETS = Number(process.env.BENCH_SOCKETS ?? 500);
const BROADCASTS = Number(process.env.BENCH_BROADCASTS ?? 20);
const CONCURRENCY = Number(process.env.BENCH_CONNECT_CONCURRENCY ?? 25);

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
};
const ms = (value: number) => `${value.toFixed(1)} ms`;

/** RSS (MiB) of every workerd process below `pid`. */
function workerdRssMiB(pid: number): number {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(/PPid:\s+(\d+)/.exec(readFileSync(`/proc/${entry}/status`, "utf8"))?.[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {}
  }
  let total = 0;
  const walk = (p: number) => {
    for (const child of children.get(p) ?? []) {
      try {
        const status = readFileSync(`/proc/${child}/status`, "utf8");
        if (/Name:\s+workerd/.test(status)) total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      } catch {}
      walk(child);
    }
  };
  walk(pid);
  return total / 1024;
}

interface Socket {
  ws: WebSocket;
  /** node_id → receive time. */
  received: Map<string, number>;
}

async function connect(base: URL, key: TestHotkey): Promise<{ socket: Socket; ms: number }> {
  const headers = await cliHeaders(key, { purpose: "sockets" });
  const started = performance.now();
  const ws = new WebSocket(`ws://${base.host}/`, { headers: { ...headers, host: `socket.localhost:${base.port}` } });
  const received = new Map<string, number>();
  return new Promise((resolve, reject) => {
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once("error", reject);
    ws.on("message", (data) => {
      const frame = JSON.parse(String(data)) as { type: string; reason?: string; data?: { node_id?: string } };
      if (frame.type === "hello") resolve({ socket: { ws, received }, ms: performance.now() - started });
      else if (frame.reason === "node_deleted" && frame.data?.node_id)
        received.set(frame.data.node_id, performance.now());
    });
  });
}

function signedGet(base: URL, key: TestHotkey, path: string): Promise<number> {
  return cliHeaders(key, { purpose: "miner" }).then(
    (headers) =>
      new Promise((resolve, reject) => {
        const req = http.request(
          new URL(path, base),
          { headers: { ...headers, host: `api.localhost:${base.port}` } },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
          },
        );
        req.on("error", reject);
        req.end();
      }),
  );
}

function signedDelete(base: URL, key: TestHotkey, path: string): Promise<number> {
  return cliHeaders(key, { purpose: "nodes" }).then(
    (headers) =>
      new Promise((resolve, reject) => {
        const req = http.request(
          new URL(path, base),
          { method: "DELETE", headers: { ...headers, host: `api.localhost:${base.port}` } },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
          },
        );
        req.on("error", reject);
        req.end();
      }),
  );
}

async function broadcasts(base: URL, databaseUrl: string, publisher: TestHotkey, sockets: Socket[]) {
  const uuids = await withDatabase(databaseUrl, (db) => seedNodes(db, publisher.ss58, { count: BROADCASTS }));
  const latencies: number[] = [];
  const spreads: number[] = [];
  const deletes: number[] = [];
  for (const uuid of uuids) {
    const sent = performance.now();
    const status = await signedDelete(base, publisher, `/nodes/${uuid}`);
    deletes.push(performance.now() - sent);
    if (status !== 200) throw new Error(`DELETE /nodes/${uuid}: ${status}`);
    const until = Date.now() + 10_000;
    while (sockets.some((s) => !s.received.has(uuid)) && Date.now() < until) await new Promise((r) => setTimeout(r, 2));
    const times = sockets.map((s) => s.received.get(uuid));
    if (times.some((t) => t === undefined))
      throw new Error(`broadcast ${uuid} missed ${times.filter((t) => t === undefined).length} sockets`);
    const got = times as number[];
    for (const t of got) latencies.push(t - sent);
    spreads.push(Math.max(...got) - Math.min(...got));
  }
  return { latencies, spreads, deletes };
}

async function main() {
  console.log(
    `miner sockets: ${SOCKETS} sockets, ${BROADCASTS} broadcasts, ${os.cpus().length} CPUs, Node ${process.version}`,
  );
  const platform = await startPlatform({ scratchPrefix: "chutes_bench_sockets" });
  const base = new URL(platform.url);
  const open: Socket[] = [];
  try {
    const keys = Array.from({ length: SOCKETS + 1 }, randomHotkey);
    const publisher = keys[SOCKETS] as TestHotkey;
    await withDatabase(platform.databaseUrl, (db) =>
      db.insert(metagraphNodes).values(
        keys.map((key, i) => ({
          hotkey: key.ss58,
          netuid: 64,
          nodeId: -10_000 - i,
          coldkey: key.ss58,
          checksum: "bench",
        })),
      ),
    );
    // Warm-up: the Worker, the hub and the DB pool are started.
    const warm = await connect(base, keys[0] as TestHotkey);
    warm.socket.ws.close();
    await new Promise((r) => setTimeout(r, 500));
    const rssBefore = workerdRssMiB(platform.pid);

    // Memory baseline: the same number of requests through the same authentication (a
    // signed miner GET: signature, replay cache, metagraph lookup), without sockets.
    let nextRequest = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = nextRequest++; i < SOCKETS; i = nextRequest++) {
          const status = await signedGet(base, keys[i] as TestHotkey, "/miner/nodes/");
          if (status !== 200) throw new Error(`GET /miner/nodes/: ${status}`);
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 1000));
    const rssRequests = workerdRssMiB(platform.pid);

    // Baseline: one socket.
    const single = await connect(base, keys[0] as TestHotkey);
    const baseline = await broadcasts(base, platform.databaseUrl, publisher, [single.socket]);
    single.socket.ws.close();

    // All sockets.
    const connectTimes: number[] = [];
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < SOCKETS; i = next++) {
          const { socket, ms: took } = await connect(base, keys[i] as TestHotkey);
          open.push(socket);
          connectTimes.push(took);
        }
      }),
    );
    const connectTotal = performance.now() - started;
    await new Promise((r) => setTimeout(r, 1000));
    const rssOpen = workerdRssMiB(platform.pid);
    const fanout = await broadcasts(base, platform.databaseUrl, publisher, open);
    const rssAfter = workerdRssMiB(platform.pid);
    for (const socket of open.splice(0)) socket.ws.close();
    await new Promise((r) => setTimeout(r, 3000));
    const rssClosed = workerdRssMiB(platform.pid);

    const p50b = percentile(baseline.latencies, 50);
    const p50 = percentile(fanout.latencies, 50);
    console.log("");
    console.log(
      `connect (${SOCKETS} sockets, ${CONCURRENCY} in flight): p50 ${ms(percentile(connectTimes, 50))}, p99 ${ms(percentile(connectTimes, 99))}, total ${(connectTotal / 1000).toFixed(2)} s (${(SOCKETS / (connectTotal / 1000)).toFixed(0)} connects/s)`,
    );
    console.log(
      `baseline broadcast to 1 socket: p50 ${ms(p50b)}, p99 ${ms(percentile(baseline.latencies, 99))} (DELETE answered p50 ${ms(percentile(baseline.deletes, 50))})`,
    );
    console.log(
      `broadcast to ${SOCKETS} sockets: p50 ${ms(p50)}, p99 ${ms(percentile(fanout.latencies, 99))} (DELETE answered p50 ${ms(percentile(fanout.deletes, 50))}); ×${(p50 / p50b).toFixed(2)} the 1-socket p50`,
    );
    console.log(
      `fan-out spread (first → last socket) per broadcast: p50 ${ms(percentile(fanout.spreads, 50))}, max ${ms(Math.max(...fanout.spreads))}`,
    );
    console.log(
      `workerd RSS: ${rssBefore.toFixed(0)} MiB at start, ${rssRequests.toFixed(0)} MiB after ${SOCKETS} signed requests (baseline), ${rssOpen.toFixed(0)} MiB with ${SOCKETS} sockets open (+${(((rssOpen - rssRequests) * 1024) / SOCKETS).toFixed(1)} KiB/socket over the baseline), ${rssAfter.toFixed(0)} MiB after the broadcasts, ${rssClosed.toFixed(0)} MiB 3 s after closing them all`,
    );
  } finally {
    for (const socket of open) socket.ws.terminate();
    await platform.stop();
  }
}

await main();
