/**
 * @module `npm run bench:export`: the hourly export of 1,000,000 invocations of one hour
 * (and of 100,000, to show memory does not grow with the row count), timed, with peak
 * memory, against baselines measured in the same run (docs/benchmarks.md).
 *
 * - Postgres: a scratch database on DATABASE_URL's server (embedded PGlite without it,
 *   which is far slower and not what production runs); rows are made by generate_series.
 * - Node: `export-child.ts` in a fresh process per measurement (so its VmHWM is that
 *   run's peak): the exporter's own code into a byte-counting stand-in for R2, and the
 *   baseline: the same cursor reading the same rows and doing nothing with them; plus
 *   `COPY (same query) TO STDOUT CSV` through psql, when psql is installed (Postgres
 *   writing CSV itself, no hashing).
 * - workerd (`BENCH_WORKERD=0` skips it): the real cron job under `npm start` (wrangler
 *   dev, the Neon driver through the local ws proxy, miniflare's R2 on disk), triggered
 *   for each seeded hour; time from trigger to the manifest row, and the workerd
 *   process's peak RSS (reset through /proc/<pid>/clear_refs before each run).
 */
import { execFileSync, spawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { triggerCron } from "../../infra/dev/cron.ts";
import { applyMigrations, createScratchDatabase, startEmbeddedPostgres } from "../../infra/dev/postgres.ts";
import { EXPORT_QUERY, SPAN_LOOKBACK_MS } from "../../src/services/exports.ts";
import { startPlatform } from "../support/platform.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const HOUR = 3_600_000;
const SIZES = (process.env.BENCH_ROWS ?? "100000,1000000").split(",").map(Number);
const HEAP_CAP_MIB = 64;
// Hours far from anything else in a scratch database, one per size, a day apart.
const hourFor = (i: number) => new Date(Date.UTC(2025, 5, 2 + i, 9));

/** Rows spread over the hour, about 370 bytes of CSV each, as the gateway writes them. */
async function seed(client: pg.Client, hourStart: Date, count: number): Promise<void> {
  await client.query("select ensure_invocation_partition($1::timestamptz)", [hourStart.toISOString()]);
  await client.query(
    `insert into invocations (invocation_id, parent_invocation_id, chute_id, chute_user_id, function_name, user_id,
       image_id, image_user_id, instance_id, miner_uid, miner_hotkey, started_at, completed_at, error_message,
       compute_multiplier, bounty, metrics)
     select md5($2 || g)::uuid::text, md5($2 || 'p' || g)::uuid::text, md5('chute' || (g % 97))::uuid::text,
       md5('owner' || (g % 13))::uuid::text, case when g % 3 = 0 then 'chat_stream' else 'completion' end,
       md5('user' || (g % 1009))::uuid::text, md5('image' || (g % 97))::uuid::text, md5('owner' || (g % 13))::uuid::text,
       md5('instance' || (g % 499))::uuid::text, 1 + g % 255, '5' || substr(md5('hotkey' || (g % 255)) || md5('x' || (g % 255)), 1, 47),
       $1::timestamptz + (g * 3599.999 / $3) * interval '1 second',
       case when g % 41 = 0 then null else $1::timestamptz + (g * 3599.999 / $3 + 0.5 + (g % 17)) * interval '1 second' end,
       case when g % 97 = 0 then 'RATE_LIMIT' when g % 89 = 0 then 'miner returned 500: "upstream, busy"' end,
       (1 + g % 8) * 0.087671, case when g % 1000 = 0 then 100 else 0 end,
       jsonb_build_object('ttft', 0.25, 'tps', 40, 'tokens', 100 + g % 400)
     from generate_series(1, $3) as g`,
    [hourStart.toISOString(), `h${hourStart.getTime()}`, count],
  );
}

interface ChildResult {
  mode: string;
  rows: number;
  bytes: number;
  parts: number;
  seconds: number;
  peakRssKb: number;
  startRssKb: number;
  peakHeapBytes: number;
}

function runChild(databaseUrl: string, hour: Date, mode: "export" | "read"): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    // A fixed old-space cap for every run: without one V8 lets garbage pile up in
    // proportion to what was allocated, which says nothing about what the export holds.
    const script = path.join(ROOT, "test/bench/export-child.ts");
    const args = [`--max-old-space-size=${HEAP_CAP_MIB}`, script, databaseUrl, hour.toISOString(), mode];
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`export-child ${mode} exited ${code}`));
      resolve(JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as ChildResult);
    });
  });
}

function psqlCopy(databaseUrl: string, hour: Date): number | null {
  const query = EXPORT_QUERY.replaceAll("$1", `'${hour.toISOString()}'`)
    .replaceAll("$2", `'${new Date(hour.getTime() + HOUR).toISOString()}'`)
    .replaceAll("$3", `'${new Date(hour.getTime() - SPAN_LOOKBACK_MS).toISOString()}'`);
  const started = performance.now();
  try {
    execFileSync(
      "psql",
      [databaseUrl, "-q", "-c", `\\copy (${query.replace(/\s+/g, " ")}) to '/dev/null' with csv header`],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
  } catch (error) {
    console.error(`psql COPY baseline skipped: ${(error as Error).message.split("\n")[0]}`);
    return null;
  }
  return (performance.now() - started) / 1000;
}

const mib = (kb: number) => (kb / 1024).toFixed(0);
const rate = (rows: number, seconds: number) => Math.round(rows / seconds).toLocaleString("en-US");

/** The workerd process running the user Worker below `pid` (the one wrangler gives an inspector). */
function workerdPid(pid: number): number | undefined {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${entry}/status`, "utf8"))?.[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // The process ended meanwhile.
    }
  }
  const found: number[] = [];
  const walk = (p: number) => {
    for (const child of children.get(p) ?? []) {
      const cmd = readFileSync(`/proc/${child}/cmdline`, "utf8");
      if (cmd.includes("workerd") && cmd.includes("--inspector-addr")) found.push(child);
      walk(child);
    }
  };
  walk(pid);
  return found[0];
}

const vmhwm = (pid: number) =>
  Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);

/** Production isolates have 128 MB; without a cap V8 lets garbage grow with the work done. */
const WORKERD_V8_FLAGS = "--max-old-space-size=96";

async function workerdRuns(
  seedRows: (databaseUrl: string) => Promise<void>,
): Promise<{ rows: number; seconds: number; peakKb: number; baseKb: number }[]> {
  process.env.MINIFLARE_WORKERD_V8_FLAGS = WORKERD_V8_FLAGS;
  const platform = await startPlatform({ readyTimeoutMs: 120_000, scratchPrefix: "chutes_bench" });
  try {
    await seedRows(platform.databaseUrl);
    const port = Number(new URL(platform.url).port);
    const workerd = workerdPid(platform.pid);
    if (!workerd) throw new Error("no workerd process found under npm start");
    const client = new pg.Client({ connectionString: platform.databaseUrl });
    await client.connect();
    const results = [];
    try {
      for (const [i, rows] of SIZES.entries()) {
        const hour = hourFor(i);
        writeFileSync(`/proc/${workerd}/clear_refs`, "5");
        const baseKb = vmhwm(workerd);
        const started = performance.now();
        await triggerCron(port, "1 * * * *", new Date(hour.getTime() + HOUR + 60_000));
        let seconds = 0;
        for (;;) {
          const found = await client.query("select row_count from export_manifests where hour_start = $1", [hour]);
          if (found.rows.length > 0) {
            seconds = (performance.now() - started) / 1000;
            break;
          }
          if (performance.now() - started > 600_000) throw new Error("the workerd export did not finish in 10 min");
          await new Promise((r) => setTimeout(r, 50));
        }
        results.push({ rows, seconds, peakKb: vmhwm(workerd), baseKb });
      }
    } finally {
      await client.end();
    }
    return results;
  } finally {
    await platform.stop();
  }
}

async function main(): Promise<void> {
  const real = process.env.DATABASE_URL;
  const database = real ? await createScratchDatabase(real, "chutes_bench") : await startEmbeddedPostgres();
  console.log(
    `export benchmark: ${SIZES.join(" and ")} rows; Postgres: ${real ? "server at DATABASE_URL" : "embedded PGlite"}`,
  );
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, Node ${process.version}`);
  const seedAll = async (url: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      for (const [i, rows] of SIZES.entries()) await seed(client, hourFor(i), rows);
      await client.query("vacuum analyze invocations");
    } finally {
      await client.end();
    }
  };
  try {
    await applyMigrations(database.url);
    const seedStart = performance.now();
    await seedAll(database.url);
    console.log(`seeded in ${((performance.now() - seedStart) / 1000).toFixed(1)} s\n`);

    console.log(
      `Node (the exporter's code in a fresh process per run, --max-old-space-size=${HEAP_CAP_MIB}; R2 replaced by a byte counter; RSS from /proc VmHWM):`,
    );
    console.log(
      "| rows | read-only baseline s | rows/s | psql COPY csv s | export s | rows/s | export ÷ read | MB/s | parts | RSS MiB at start → peak: read | export | peak heap MiB |",
    );
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    const nodeSeconds = new Map<number, number>();
    for (const [i, rows] of SIZES.entries()) {
      const hour = hourFor(i);
      const read = await runChild(database.url, hour, "read");
      const copy = real ? psqlCopy(database.url, hour) : null;
      const exported = await runChild(database.url, hour, "export");
      if (read.rows !== rows || exported.rows !== rows)
        throw new Error(`expected ${rows} rows, read ${read.rows}, exported ${exported.rows}`);
      nodeSeconds.set(rows, exported.seconds);
      console.log(
        `| ${rows.toLocaleString("en-US")} | ${read.seconds.toFixed(2)} | ${rate(rows, read.seconds)} | ${copy === null ? "—" : copy.toFixed(2)} | ` +
          `${exported.seconds.toFixed(2)} | ${rate(rows, exported.seconds)} | ${(exported.seconds / read.seconds).toFixed(2)}× | ` +
          `${(exported.bytes / exported.seconds / 1e6).toFixed(0)} | ${exported.parts} | ${mib(read.startRssKb)} → ${mib(read.peakRssKb)} | ` +
          `${mib(exported.startRssKb)} → ${mib(exported.peakRssKb)} | ` +
          `${(exported.peakHeapBytes / 2 ** 20).toFixed(0)} |`,
      );
    }
    if (process.env.BENCH_WORKERD === "0") return;
    console.log(
      `\nworkerd (the minute-1 cron under npm start, V8 flags ${WORKERD_V8_FLAGS}; Neon driver through the local ws ` +
        "proxy, miniflare's R2 on disk; time = trigger → manifest row; RSS = the workerd process's VmHWM, reset before each run):",
    );
    console.log("| rows | export s | rows/s | ÷ Node export | workerd RSS MiB at start → peak |");
    console.log("| --- | --- | --- | --- | --- |");
    for (const run of await workerdRuns(seedAll)) {
      const node = nodeSeconds.get(run.rows) ?? Number.NaN;
      console.log(
        `| ${run.rows.toLocaleString("en-US")} | ${run.seconds.toFixed(2)} | ${rate(run.rows, run.seconds)} | ` +
          `${(run.seconds / node).toFixed(2)}× | ${mib(run.baseKb)} → ${mib(run.peakKb)} |`,
      );
    }
  } finally {
    await database.close();
  }
}

await main();
