/**
 * @module One measured run of the export benchmark, in a fresh Node process so its peak
 * resident memory (VmHWM) belongs to that run alone: `node test/bench/export-child.ts
 * <databaseUrl> <hourStartIso> <mode>` prints one JSON line.
 *
 * Modes, over the same rows of the same hour:
 * - `export`: the exporter's own code (`exportHour`: cursor, CSV, receipts' Merkle tree,
 *   incremental SHA-256, signed manifest, parts of 8 MiB) into a sink that stands in for
 *   R2 and only counts what it receives;
 * - `read`: the baseline, the same cursor and batches with nothing done to the rows.
 */
import { readFileSync } from "node:fs";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { nodeSha256 } from "../../infra/ops/node-sha256.ts";
import { signerFromSeed } from "../../src/chain/keys.ts";
import { cursorBatches, declareCursor } from "../../src/db/cursor.ts";
import * as schema from "../../src/db/schema.ts";
import type { ExportBucket, UploadedPart } from "../../src/exports/object-writer.ts";
import { EXPORT_BATCH_ROWS, EXPORT_QUERY, exportHour, SPAN_LOOKBACK_MS } from "../../src/services/exports.ts";

const [databaseUrl, hourIso, mode] = process.argv.slice(2);
if (!databaseUrl || !hourIso || (mode !== "export" && mode !== "read")) {
  console.error("usage: export-child.ts <databaseUrl> <hourStartIso> export|read");
  process.exit(2);
}
const hourStart = new Date(hourIso);

/** Counts bytes and parts, keeps only small objects (the manifest): R2 is remote. */
function countingBucket() {
  const small = new Map<string, string>();
  const stats = { bytes: 0, parts: 0, largestPart: 0 };
  const bucket: ExportBucket = {
    head: async (key) => (small.has(key) ? { size: small.get(key)?.length ?? 0 } : null),
    get: async () => null,
    async put(key, value) {
      const size = typeof value === "string" ? value.length : value.byteLength;
      stats.bytes += size;
      if (size < 1_000_000) small.set(key, typeof value === "string" ? value : "(bytes)");
      return {};
    },
    async createMultipartUpload() {
      return {
        async uploadPart(partNumber, value): Promise<UploadedPart> {
          stats.bytes += value.byteLength;
          stats.parts++;
          stats.largestPart = Math.max(stats.largestPart, value.byteLength);
          return { partNumber, etag: String(partNumber) };
        },
        complete: async () => ({}),
        abort: async () => {},
      };
    },
  };
  return { bucket, stats };
}

/** Peak resident set of this process, from the kernel (kB). */
function peakRssKb(): number {
  const line = readFileSync("/proc/self/status", "utf8").match(/^VmHWM:\s+(\d+) kB/m);
  return Number(line?.[1] ?? 0);
}

const client = new pg.Client({ connectionString: databaseUrl });
await client.connect();
const rssBefore = peakRssKb();
let peakHeap = 0;
const sampler = setInterval(() => {
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
}, 10);
const started = performance.now();
let rows = 0;
let bytes = 0;
let parts = 0;
if (mode === "export") {
  const { bucket, stats } = countingBucket();
  const outcome = await exportHour(
    {
      db: drizzle(client, { schema }),
      client,
      bucket,
      signer: signerFromSeed(`0x${"be".repeat(32)}`),
      now: () => new Date(),
      sha256: nodeSha256,
    },
    hourStart,
  );
  if (outcome.status !== "exported") throw new Error(`expected a fresh export, got ${outcome.status}`);
  rows = outcome.manifest?.row_count ?? 0;
  bytes = outcome.manifest?.byte_length ?? 0;
  parts = stats.parts;
} else {
  await client.query("BEGIN READ ONLY");
  await declareCursor(client, "bench_rows", EXPORT_QUERY, [
    hourStart.toISOString(),
    new Date(hourStart.getTime() + 3_600_000).toISOString(),
    new Date(hourStart.getTime() - SPAN_LOOKBACK_MS).toISOString(),
  ]);
  for await (const batch of cursorBatches(client, "bench_rows", EXPORT_BATCH_ROWS)) rows += batch.length;
  await client.query("COMMIT");
}
const seconds = (performance.now() - started) / 1000;
clearInterval(sampler);
peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
await client.end();
console.log(
  JSON.stringify({
    mode,
    rows,
    bytes,
    parts,
    seconds,
    peakRssKb: peakRssKb(),
    startRssKb: rssBefore,
    peakHeapBytes: peakHeap,
  }),
);
