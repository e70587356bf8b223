/**
 * @module Hourly invocation exports for auditors (upstream-flows §2, docs/protocols.md
 * "Exports"): the exporter the cron runs, and what the export routes read.
 *
 * An hour [H, H+1h) is exported once, to `invocations/YYYY/MM/DD/{H+1}.csv` (named by
 * its END hour, as upstream) with a signed manifest beside it and a row in
 * `export_manifests`. Rows: `started_at` in the hour, or `completed_at` in the hour for
 * an attempt started at most `SPAN_LOOKBACK_MS` earlier; ordered by `started_at`, then
 * `invocation_id` in byte order (upstream had no tie-break; a file must be reproducible).
 *
 * Never overwritten: one exporter per hour at a time (transaction-scoped advisory lock),
 * a conditional put or a multipart upload that becomes visible only when complete, and
 * the manifest row written last, in the same transaction as the lock. A re-run of an
 * exported hour checks the stored objects against the row and returns the manifest. A
 * run that died after its CSV became visible but before the row was committed is
 * finished by the next run from the stored bytes ("adopted"), never by writing again.
 *
 * Memory is flat in the row count: rows come through a server-side cursor in batches,
 * bytes go to R2 in fixed parts, the file hash is incremental and the Merkle tree keeps
 * O(log n) subtree roots.
 */
import { and, eq, gte, lt } from "drizzle-orm";
import type { HotkeySigner } from "../chain/keys.ts";
import { cursorBatches, declareCursor, type SqlClient } from "../db/cursor.ts";
import { exportManifests } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";
import { CRLF, EXPORT_COLUMNS, EXPORT_SELECT, formatRecord, headerRecord, RECENT_COLUMNS } from "../exports/csv.ts";
import {
  type ExportKeys,
  type ExportManifest,
  exportKeys,
  HOUR_MS,
  hourFloor,
  manifestBody,
  parseManifest,
  serializeManifest,
  signManifest,
} from "../exports/manifest.ts";
import { MerkleBuilder, prefixedLeafHashInto } from "../exports/merkle.ts";
import {
  EXPORT_PART_BYTES,
  type ExportBucket,
  IF_ABSENT,
  ObjectExistsError,
  ObjectWriter,
} from "../exports/object-writer.ts";
import { nobleSha256, type Sha256Factory } from "../exports/sha256.ts";
import { checkManifest, digestExport } from "../exports/verify.ts";
import { toHex, utf8 } from "../lib/bytes.ts";

/**
 * How long before the hour an attempt that completed inside it may have started. The
 * gateway gives up on an attempt after 600 s (architecture.md), so an hour is ample; the
 * bound keeps the query on the hour's partition range instead of all history (upstream
 * HEAD bounds it at a day).
 */
export const SPAN_LOOKBACK_MS = HOUR_MS;
/** Rows per FETCH: about 2 MB of text. */
export const EXPORT_BATCH_ROWS = 5000;
/** First key of the advisory lock that makes one exporter per hour (second key: the hour number). */
const EXPORT_LOCK = 0x65787074; // "expt"

const CSV_TYPE = "text/csv";
const JSON_TYPE = "application/json";

export const EXPORT_QUERY = `SELECT ${EXPORT_SELECT} FROM invocations
  WHERE started_at >= $3 AND started_at < $2
    AND (started_at >= $1 OR (completed_at >= $1 AND completed_at < $2))
  ORDER BY started_at, invocation_id COLLATE "C"`;

export interface ExportDeps {
  /** drizzle over `client`'s one connection: the lock, the cursor and the row share a transaction. */
  db: AnyDatabase;
  client: SqlClient;
  bucket: ExportBucket;
  signer: HotkeySigner;
  now(): Date;
  sha256?: Sha256Factory;
  partBytes?: number;
  batchRows?: number;
  /** Aborting stops the export between batches and rolls it back. */
  signal?: AbortSignal;
}

export type ExportStatus = "exported" | "existing" | "adopted" | "busy";

export interface ExportOutcome {
  hourStart: Date;
  status: ExportStatus;
  /** Null only when another exporter holds the hour. */
  manifest: ExportManifest | null;
}

type ManifestRow = typeof exportManifests.$inferSelect;

/** Encodes one record after a 0x00 byte (the leaf prefix) and before CRLF, in a reused buffer. */
class RecordEncoder {
  #buffer = new Uint8Array(4096);
  readonly #encoder = new TextEncoder();

  /** Writes the record; returns its UTF-8 length n (prefix at 0, record at 1..n, CRLF after). */
  encode(record: string): number {
    for (;;) {
      const { read, written } = this.#encoder.encodeInto(record, this.#buffer.subarray(1, this.#buffer.length - 2));
      if (read === record.length) {
        this.#buffer[1 + written] = 0x0d;
        this.#buffer[2 + written] = 0x0a;
        return written;
      }
      this.#buffer = new Uint8Array(Math.max(this.#buffer.length * 2, record.length * 3 + 3));
    }
  }

  /** 0x00 ‖ record: what the leaf hash covers. */
  prefixed(n: number): Uint8Array {
    return this.#buffer.subarray(0, 1 + n);
  }

  /** record ‖ CRLF: what the file holds. */
  line(n: number): Uint8Array {
    return this.#buffer.subarray(1, 3 + n);
  }
}

function rowOf(manifest: ExportManifest, hourStart: Date, keys: ExportKeys): typeof exportManifests.$inferInsert {
  return {
    hourStart,
    csvKey: keys.csv,
    manifestKey: keys.manifest,
    rowCount: manifest.row_count,
    byteLength: manifest.byte_length,
    sha256: manifest.sha256,
    merkleRoot: manifest.merkle_root,
    signerHotkey: manifest.validator,
    signature: manifest.signature,
    createdAt: new Date(manifest.created_at),
  };
}

/** Streams the hour's rows into R2 and signs the manifest of what was written. */
async function writeExport(deps: ExportDeps, keys: ExportKeys, hourStart: Date): Promise<ExportManifest> {
  const { client, signer } = deps;
  const writer = new ObjectWriter(deps.bucket, keys.csv, {
    partBytes: deps.partBytes ?? EXPORT_PART_BYTES,
    contentType: CSV_TYPE,
    sha256: deps.sha256 ?? nobleSha256,
  });
  const tree = new MerkleBuilder();
  const encoder = new RecordEncoder();
  const leaf = new Uint8Array(32);
  const end = new Date(hourStart.getTime() + HOUR_MS);
  try {
    await declareCursor(client, "export_rows", EXPORT_QUERY, [
      hourStart.toISOString(),
      end.toISOString(),
      new Date(hourStart.getTime() - SPAN_LOOKBACK_MS).toISOString(),
    ]);
    await writer.write(utf8(headerRecord(EXPORT_COLUMNS) + CRLF));
    for await (const rows of cursorBatches(client, "export_rows", deps.batchRows ?? EXPORT_BATCH_ROWS)) {
      for (const row of rows) {
        const n = encoder.encode(formatRecord(row));
        prefixedLeafHashInto(encoder.prefixed(n), leaf);
        tree.add(leaf);
        const sent = writer.write(encoder.line(n));
        if (sent) await sent;
      }
      deps.signal?.throwIfAborted();
    }
    await client.query({ text: "CLOSE export_rows" });
    const written = await writer.finish();
    const manifest = signManifest(
      manifestBody(signer.hotkey, {
        hourStart,
        rowCount: tree.count,
        byteLength: written.byteLength,
        sha256: written.sha256,
        merkleRoot: toHex(tree.root()),
        createdAt: deps.now(),
      }),
      signer,
    );
    await putManifest(deps.bucket, keys, manifest);
    return manifest;
  } catch (error) {
    await writer.abort().catch(() => {});
    throw error;
  }
}

async function putManifest(bucket: ExportBucket, keys: ExportKeys, manifest: ExportManifest): Promise<void> {
  const stored = await bucket.put(keys.manifest, serializeManifest(manifest), {
    onlyIf: IF_ABSENT,
    httpMetadata: { contentType: JSON_TYPE },
  });
  if (stored === null) throw new ObjectExistsError(keys.manifest);
}

/**
 * A CSV is stored but its row is missing (the run that wrote it died before commit):
 * recompute the manifest from the stored bytes, or check the stored manifest against them.
 */
async function adoptExport(deps: ExportDeps, keys: ExportKeys, hourStart: Date): Promise<ExportManifest> {
  const csv = await deps.bucket.get(keys.csv);
  if (!csv) throw new Error(`${keys.csv} disappeared while being adopted`);
  const digest = await digestExport(csv.body, { sha256: deps.sha256 });
  const stored = await deps.bucket.get(keys.manifest);
  if (stored) {
    const manifest = parseManifest(await stored.text());
    const { problems } = checkManifest(manifest, digest, { validator: deps.signer.hotkey, key: keys.csv });
    if (problems.length > 0) throw new Error(`stored export ${keys.csv} does not match its manifest: ${problems[0]}`);
    return manifest;
  }
  const manifest = signManifest(
    manifestBody(deps.signer.hotkey, { hourStart, ...digest, createdAt: deps.now() }),
    deps.signer,
  );
  await putManifest(deps.bucket, keys, manifest);
  return manifest;
}

/** The stored objects of an exported hour agree with its row; returns the manifest. */
async function checkStoredExport(bucket: ExportBucket, row: ManifestRow): Promise<ExportManifest> {
  const [csv, stored] = await Promise.all([bucket.head(row.csvKey), bucket.get(row.manifestKey)]);
  if (!csv || !stored) throw new Error(`export ${row.csvKey} is recorded but its objects are missing`);
  const manifest = parseManifest(await stored.text());
  if (
    csv.size !== row.byteLength ||
    manifest.byte_length !== row.byteLength ||
    manifest.sha256 !== row.sha256 ||
    manifest.merkle_root !== row.merkleRoot ||
    manifest.signature !== row.signature
  ) {
    throw new Error(`export ${row.csvKey} does not match its recorded manifest`);
  }
  return manifest;
}

async function manifestRow(db: AnyDatabase, hourStart: Date): Promise<ManifestRow | null> {
  const [row] = await db.select().from(exportManifests).where(eq(exportManifests.hourStart, hourStart));
  return row ?? null;
}

/** Exports [hourStart, hourStart + 1 h) once; safe to call again and concurrently. */
export async function exportHour(deps: ExportDeps, hourStart: Date): Promise<ExportOutcome> {
  if (hourStart.getTime() % HOUR_MS !== 0) throw new RangeError(`${hourStart.toISOString()} is not a whole hour`);
  const existing = await manifestRow(deps.db, hourStart);
  if (existing) return { hourStart, status: "existing", manifest: await checkStoredExport(deps.bucket, existing) };
  const keys = exportKeys(hourStart);
  return deps.db.transaction(async (tx) => {
    const lock = await deps.client.query({
      text: "SELECT pg_try_advisory_xact_lock($1, $2)",
      values: [EXPORT_LOCK, hourStart.getTime() / HOUR_MS],
      rowMode: "array",
    });
    if ((lock.rows[0] as unknown[] | undefined)?.[0] !== true) return { hourStart, status: "busy", manifest: null };
    const raced = await manifestRow(tx, hourStart);
    if (raced) return { hourStart, status: "existing", manifest: await checkStoredExport(deps.bucket, raced) };
    const adopt = (await deps.bucket.head(keys.csv)) !== null;
    const manifest = adopt ? await adoptExport(deps, keys, hourStart) : await writeExport(deps, keys, hourStart);
    deps.signal?.throwIfAborted();
    await tx.insert(exportManifests).values(rowOf(manifest, hourStart, keys));
    return { hourStart, status: adopt ? "adopted" : "exported", manifest };
  });
}

export interface PendingOptions {
  /** Hours looked back for ones never exported (e.g. the cron did not run). */
  catchUpHours: number;
  /** Hours exported per call at most, newest first. */
  maxHours: number;
}

export const PENDING_DEFAULTS: PendingOptions = { catchUpHours: 24, maxHours: 3 };

/** The closed hours before `now` (newest first) that have no export yet. */
export async function pendingHours(db: AnyDatabase, now: Date, options = PENDING_DEFAULTS): Promise<Date[]> {
  const latest = hourFloor(now).getTime() - HOUR_MS;
  const oldest = latest - (options.catchUpHours - 1) * HOUR_MS;
  const done = await db
    .select({ hourStart: exportManifests.hourStart })
    .from(exportManifests)
    .where(and(gte(exportManifests.hourStart, new Date(oldest)), lt(exportManifests.hourStart, new Date(latest + 1))));
  const exported = new Set(done.map((row) => row.hourStart.getTime()));
  const hours: Date[] = [];
  for (let at = latest; at >= oldest && hours.length < options.maxHours; at -= HOUR_MS) {
    if (!exported.has(at)) hours.push(new Date(at));
  }
  return hours;
}

// ---------------------------------------------------------------------------------------
// Reading exports back (routes)
// ---------------------------------------------------------------------------------------

export type ExportFile = "csv" | "manifest";

export type ExportPath =
  | { ok: true; hourEnd: Date; file: ExportFile; key: string; filename: string }
  | { ok: false; status: 400 | 404; detail: string };

/**
 * Checks `{year}/{month}/{day}/{hour}.csv` (or `.manifest.json`) as the route receives
 * them: 400 for anything that is not a real UTC hour (upstream answered 500 for Feb 31),
 * 404 for an hour that has not ended yet (or, in the route, nothing stored).
 */
export function parseExportPath(
  params: { year: string; month: string; day: string; file: string },
  now: Date,
): ExportPath {
  const bad = (detail: string): ExportPath => ({ ok: false, status: 400, detail });
  const match = /^(\d{1,2})\.(csv|manifest\.json)$/.exec(params.file);
  if (!/^\d{4}$/.test(params.year) || !/^\d{1,2}$/.test(params.month) || !/^\d{1,2}$/.test(params.day) || !match) {
    return bad("Export paths are /invocations/exports/{year}/{month}/{day}/{hour}.csv (or .manifest.json).");
  }
  const [year, month, day, hour] = [params.year, params.month, params.day, match[1]].map(Number) as [
    number,
    number,
    number,
    number,
  ];
  const at = new Date(Date.UTC(year, month - 1, day, hour));
  if (
    month < 1 ||
    month > 12 ||
    hour > 23 ||
    at.getUTCFullYear() !== year ||
    at.getUTCMonth() !== month - 1 ||
    at.getUTCDate() !== day
  ) {
    return bad(`${year}-${month}-${day} ${hour}:00 is not a valid UTC date and hour.`);
  }
  const describe = `year=${year} month=${month} day=${day} hour=${hour}`;
  if (at.getTime() > now.getTime()) {
    return { ok: false, status: 404, detail: `Invocations export not found ${describe}` };
  }
  const keys = exportKeys(new Date(at.getTime() - HOUR_MS));
  const file = match[2] === "csv" ? "csv" : "manifest";
  const stem = `${year}-${params.month.padStart(2, "0")}-${params.day.padStart(2, "0")}-${match[1]?.padStart(2, "0")}`;
  return {
    ok: true,
    hourEnd: at,
    file,
    key: file === "csv" ? keys.csv : keys.manifest,
    filename: file === "csv" ? `${stem}.csv` : `${stem}.manifest.json`,
  };
}

// ---------------------------------------------------------------------------------------
// Recent invocations (live)
// ---------------------------------------------------------------------------------------

export const RECENT_WINDOW_MS = 24 * HOUR_MS;
export const RECENT_BATCH_ROWS = 1000;

const RECENT_QUERY = (byHotkey: boolean) => `SELECT ${EXPORT_SELECT} FROM invocations
  WHERE started_at >= $1${byHotkey ? " AND miner_hotkey = $3" : ""}
  ORDER BY started_at DESC, invocation_id COLLATE "C" DESC
  LIMIT $2`;

/**
 * The CSV of `/invocations/exports/recent` (upstream's columns without the parent id),
 * as a stream that reads the rows through a cursor on `client` while it is consumed and
 * calls `release` once finished or cancelled. The first batch is read before returning,
 * so a failing database is an error response, not a truncated file.
 */
export async function recentCsvStream(
  client: SqlClient,
  options: { now: Date; limit: number; hotkey?: string },
  release: (error?: Error) => void,
): Promise<ReadableStream<Uint8Array>> {
  const encoder = new TextEncoder();
  const values: unknown[] = [new Date(options.now.getTime() - RECENT_WINDOW_MS).toISOString(), options.limit];
  if (options.hotkey) values.push(options.hotkey);
  let batches: AsyncGenerator<unknown[][]>;
  let first: IteratorResult<unknown[][]>;
  try {
    await client.query({ text: "BEGIN READ ONLY" });
    await declareCursor(client, "recent_rows", RECENT_QUERY(Boolean(options.hotkey)), values);
    batches = cursorBatches(client, "recent_rows", RECENT_BATCH_ROWS);
    first = await batches.next();
  } catch (error) {
    release(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
  let finished = false;
  const finish = async (error?: Error) => {
    if (finished) return;
    finished = true;
    if (!error) await client.query({ text: "COMMIT" }).catch(() => {});
    release(error);
  };
  let pending: IteratorResult<unknown[][]> | null = first;
  let headerSent = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (!headerSent) {
          headerSent = true;
          controller.enqueue(encoder.encode(headerRecord(RECENT_COLUMNS) + CRLF));
          return;
        }
        const next = pending ?? (await batches.next());
        pending = null;
        if (next.done) {
          await finish();
          controller.close();
          return;
        }
        controller.enqueue(encoder.encode(next.value.map((row) => formatRecord(row, false) + CRLF).join("")));
      } catch (error) {
        const failure = error instanceof Error ? error : new Error(String(error));
        await finish(failure);
        controller.error(failure);
      }
    },
    async cancel() {
      await finish(new Error("the client went away"));
    },
  });
}
