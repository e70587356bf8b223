/**
 * Hourly exports inside workerd, on real Postgres and miniflare's R2: the CSV equals, byte
 * for byte, one built here independently from the seeded rows; re-runs change nothing;
 * a failed export leaves nothing visible and is retried cleanly; a CSV whose row was
 * never committed is adopted; a tampered file fails verification; and the auditors'
 * routes. Each test uses its own hours (in 2024; the cron test in 2025), so files sharing
 * the database never meet.
 */
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { eq, sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { signerFromSeed } from "../../src/chain/keys.ts";
import { openDatabase, withConnection } from "../../src/db/client.ts";
import { exportManifests } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import { exportKeys, parseManifest } from "../../src/exports/manifest.ts";
import { type ExportBucket, MIN_PART_BYTES } from "../../src/exports/object-writer.ts";
import { checkManifest, digestExport, verifyInclusion } from "../../src/exports/verify.ts";
import worker from "../../src/index.ts";
import { type ExportDeps, exportHour } from "../../src/services/exports.ts";
import { meteringShard } from "../../src/services/metering-client.ts";
import python from "../unit/fixtures/python-csv.json";
import { API_HOST } from "./accounts.ts";
import { randomHotkey } from "./chain-helpers.ts";
import { callHost, expectError } from "./helpers.ts";
import { at, invocation, type SeedInvocation, seedInvocations } from "./invocation-seed.ts";

const config = configFor(env);
const handle = openDatabase(config);
const db = handle.db;
const signer = signerFromSeed(config.VALIDATOR_HOTKEY_SEED ?? "");
const bucket = config.BUCKET;
afterAll(() => handle.close());

const HOUR = 3_600_000;
// Hours in 2024, spaced so one test's look-back hour never holds another test's rows.
let nextHour = Date.UTC(2024, 0, 1) + Math.floor(Math.random() * 5000) * HOUR;
const freshHour = () => {
  nextHour += 5 * HOUR;
  return new Date(nextHour);
};

// ------------------------------------------------------------------------------------
// The independent CSV builder: Python's csv/str/repr rules written out by hand, with the
// repr of every multiplier the tests use taken from CPython.
// ------------------------------------------------------------------------------------
const PYTHON_REPR = new Map<number, string>([
  [1, "1.0"],
  [0.5, "0.5"],
  [1e-5, "1e-05"],
  [0.087671, "0.087671"],
  [2.7375, "2.7375"],
  [1.2345678901234568e17, "1.2345678901234568e+17"],
]);
const HEADER =
  "parent_invocation_id,invocation_id,chute_id,chute_user_id,function_name,image_id,image_user_id,instance_id," +
  "miner_uid,miner_hotkey,started_at,completed_at,error_message,compute_multiplier,bounty";

function micros(text: string): bigint {
  const [base = "", fraction = "0"] = text.split(".");
  return BigInt(Date.parse(`${base.replace(" ", "T")}Z`)) * 1000n + BigInt(fraction.padEnd(6, "0"));
}
function pyField(value: string | null): string {
  if (value === null) return "";
  return /[",\r\n]/.test(value) ? `"${value.split('"').join('""')}"` : value;
}
function pyDatetime(text: string | null): string | null {
  if (text === null) return null;
  const [base = "", fraction = ""] = text.split(".");
  return /^0*$/.test(fraction) ? base : `${base}.${fraction.padEnd(6, "0")}`;
}
function pyRepr(value: number): string {
  const repr = PYTHON_REPR.get(value);
  if (repr === undefined) throw new Error(`no CPython repr recorded for ${value}`);
  return repr;
}
function expectedCsv(rows: SeedInvocation[], hourStart: Date): string {
  const start = BigInt(hourStart.getTime()) * 1000n;
  const end = start + 3_600_000_000n;
  const picked = rows.filter((r) => {
    const s = micros(r.startedAt);
    const c = r.completedAt === null ? null : micros(r.completedAt);
    return (s >= start && s < end) || (c !== null && c >= start && c < end && s >= start - 3_600_000_000n);
  });
  picked.sort((a, b) => {
    const d = micros(a.startedAt) - micros(b.startedAt);
    if (d !== 0n) return d < 0n ? -1 : 1;
    return a.invocationId < b.invocationId ? -1 : a.invocationId > b.invocationId ? 1 : 0;
  });
  const lines = picked.map((r) =>
    [
      r.parentInvocationId,
      r.invocationId,
      r.chuteId,
      r.chuteUserId,
      r.functionName,
      r.imageId,
      r.imageUserId,
      r.instanceId,
      String(r.minerUid),
      r.minerHotkey,
      pyDatetime(r.startedAt),
      pyDatetime(r.completedAt),
      r.errorMessage,
      pyRepr(r.computeMultiplier),
      String(r.bounty),
    ]
      .map(pyField)
      .join(","),
  );
  return [HEADER, ...lines].map((line) => `${line}\r\n`).join("");
}

/** The rows of one hour H that exercise every rule, plus rows the window must leave out. */
function tricky(hour: Date): { rows: SeedInvocation[]; excluded: SeedInvocation[] } {
  const tie = at(hour, 10);
  const rows = [
    invocation({ startedAt: tie, completedAt: at(hour, 11.5), invocationId: `b-${crypto.randomUUID()}` }),
    invocation({ startedAt: tie, completedAt: at(hour, 12), invocationId: `a-${crypto.randomUUID()}` }),
    invocation({
      startedAt: at(hour, 15.25),
      completedAt: at(hour, 20),
      errorMessage: 'boom, "quoted"\nsecond line\r\nthird',
      computeMultiplier: 1e-5,
    }),
    invocation({
      startedAt: at(hour, 30.000001),
      completedAt: null,
      functionName: "chat,v2",
      computeMultiplier: 0.087671,
      bounty: 100,
    }),
    invocation({ startedAt: at(hour, -600), completedAt: at(hour, 5), computeMultiplier: 2.7375 }),
    invocation({ startedAt: at(hour, -3540), completedAt: at(hour, 0) }),
    invocation({ startedAt: at(hour, 3599.999999), completedAt: at(hour, 3600.5), computeMultiplier: 0.5 }),
    invocation({
      startedAt: at(hour, 1800),
      completedAt: at(hour, 1801),
      errorMessage: "ünïcødé ✓",
      computeMultiplier: 1.2345678901234568e17,
      minerUid: 0,
    }),
  ];
  const excluded = [
    invocation({ startedAt: at(hour, -7200), completedAt: at(hour, 1) }),
    invocation({ startedAt: at(hour, 3600), completedAt: at(hour, 3601) }),
    invocation({ startedAt: at(hour, -1800), completedAt: at(hour, -60) }),
    invocation({ startedAt: at(hour, -600), completedAt: at(hour, 3600) }),
  ];
  return { rows, excluded };
}

/** Rows carrying about 256 KiB of error text each (quotes and newlines included), to fill R2 parts. */
function bulky(hour: Date, count: number): SeedInvocation[] {
  return Array.from({ length: count }, (_, i) =>
    invocation({
      startedAt: at(hour, i * 60 + 0.5),
      completedAt: at(hour, i * 60 + 2),
      errorMessage: `attempt ${i}: "upstream" said no,\n`.repeat(8000),
      bounty: i % 3,
    }),
  );
}

function exportDeps(
  connection: { db: ExportDeps["db"]; client: ExportDeps["client"] },
  extra: Partial<ExportDeps> = {},
) {
  return { ...connection, bucket, signer, now: () => new Date(), ...extra } satisfies ExportDeps;
}

const runExport = (hour: Date, extra: Partial<ExportDeps> = {}) =>
  withConnection(db, (connection) => exportHour(exportDeps(connection, extra), hour));

async function storedText(key: string): Promise<string> {
  const object = await bucket.get(key);
  if (!object) throw new Error(`${key} is not stored`);
  return object.text();
}

describe("hourly export", () => {
  it("renders fields and datetimes in Postgres exactly as CPython's csv.writer did (known answers)", async () => {
    const hour = freshHour();
    const iso = (ms: number) => new Date(ms).toISOString().slice(0, 13).replace("T", " ");
    // The fixture's rows live in 2026-11-22 09:00–10:00; move them to this test's hour.
    const shift = (text: string) =>
      text.replaceAll("2026-11-22 09", iso(hour.getTime())).replaceAll("2026-11-22 10", iso(hour.getTime() + HOUR));
    const rows = python.csv.rows.map((r) =>
      invocation({
        parentInvocationId: String(r[0]),
        invocationId: `${String(r[1])}-${hour.getTime()}`,
        chuteId: String(r[2]),
        chuteUserId: String(r[3]),
        functionName: String(r[4]),
        imageId: String(r[5]),
        imageUserId: String(r[6]),
        instanceId: String(r[7]),
        minerUid: Number(r[8]),
        minerHotkey: String(r[9]),
        startedAt: shift(String(r[10])),
        completedAt: r[11] === null ? null : shift(String(r[11])),
        errorMessage: r[12] === null ? null : String(r[12]),
        computeMultiplier: Number(r[13]),
        bounty: Number(r[14]),
      }),
    );
    await seedInvocations(db, rows);
    await runExport(hour);
    const records = python.csv.records.map((record, i) =>
      shift(record).replace(`,${python.csv.rows[i]?.[1]},`, `,${python.csv.rows[i]?.[1]}-${hour.getTime()},`),
    );
    const order = rows
      .map((row, i) => ({ started: row.startedAt, record: records[i] }))
      .sort((a, b) => (a.started < b.started ? -1 : 1));
    expect(await storedText(exportKeys(hour).csv)).toBe(
      [HEADER, ...order.map((o) => o.record)].map((r) => `${r}\r\n`).join(""),
    );
  });

  it("writes the hour's rows exactly as upstream's exporter would, with a manifest that verifies", async () => {
    const hour = freshHour();
    const { rows, excluded } = tricky(hour);
    await seedInvocations(db, [...rows, ...excluded]);
    const outcome = await runExport(hour);
    expect(outcome.status).toBe("exported");

    const keys = exportKeys(hour);
    const csv = await storedText(keys.csv);
    expect(csv).toBe(expectedCsv([...rows, ...excluded], hour));

    const manifest = parseManifest(await storedText(keys.manifest));
    expect(manifest).toEqual(outcome.manifest);
    expect(manifest).toMatchObject({ validator: signer.hotkey, key: keys.csv, row_count: rows.length });
    const stored = await bucket.get(keys.csv);
    const target = rows[2]?.invocationId ?? "";
    const digest = await digestExport(stored?.body ?? new ReadableStream(), {
      prove: { invocationId: target, treeSize: manifest.row_count },
    });
    expect(checkManifest(manifest, digest, { validator: signer.hotkey, key: keys.csv }).problems).toEqual([]);
    expect(digest.inclusion && verifyInclusion(digest.inclusion, manifest.merkle_root)).toBe(true);

    const [row] = await db.select().from(exportManifests).where(eq(exportManifests.hourStart, hour));
    expect(row).toMatchObject({
      csvKey: keys.csv,
      manifestKey: keys.manifest,
      rowCount: rows.length,
      byteLength: new TextEncoder().encode(csv).length,
      sha256: manifest.sha256,
      merkleRoot: manifest.merkle_root,
      signerHotkey: signer.hotkey,
      signature: manifest.signature,
    });
  });

  it("streams a large hour in multipart uploads and never rewrites an exported hour", async () => {
    const hour = freshHour();
    const rows = bulky(hour, 48);
    await seedInvocations(db, rows);
    // About 12 MiB in R2's smallest parts: three parts, the last one short.
    const first = await runExport(hour, { partBytes: MIN_PART_BYTES, batchRows: 7 });
    expect(first.status).toBe("exported");
    const keys = exportKeys(hour);
    const before = await bucket.head(keys.csv);
    expect(await storedText(keys.csv)).toBe(expectedCsv(rows, hour));

    // New rows for the hour arrive later; a re-run verifies and returns the stored export.
    await seedInvocations(db, [invocation({ startedAt: at(hour, 100), completedAt: at(hour, 101) })]);
    const again = await runExport(hour);
    expect(again).toMatchObject({ status: "existing", manifest: first.manifest });
    const after = await bucket.head(keys.csv);
    expect(after?.etag).toBe(before?.etag);
    expect(after?.uploaded.getTime()).toBe(before?.uploaded.getTime());
    expect(await storedText(keys.csv)).toBe(expectedCsv(rows, hour));
  });

  it("leaves nothing visible when an export fails midway, and a retry exports cleanly", async () => {
    const hour = freshHour();
    const rows = bulky(hour, 48);
    await seedInvocations(db, rows);
    const keys = exportKeys(hour);
    let parts = 0;
    const failing: ExportBucket = {
      head: (key) => bucket.head(key),
      get: (key) => bucket.get(key),
      put: (key, value, options) => bucket.put(key, value, options),
      async createMultipartUpload(key, options) {
        const upload = await bucket.createMultipartUpload(key, options);
        return {
          uploadPart: async (n, value) => {
            if (++parts === 2) throw new Error("R2 went away");
            return upload.uploadPart(n, value);
          },
          complete: (list) => upload.complete(list),
          abort: () => upload.abort(),
        };
      },
    };
    await expect(runExport(hour, { bucket: failing, partBytes: MIN_PART_BYTES, batchRows: 7 })).rejects.toThrow(
      /went away/,
    );
    const aborted = new AbortController();
    aborted.abort(new Error("time limit"));
    await expect(runExport(hour, { partBytes: MIN_PART_BYTES, signal: aborted.signal })).rejects.toThrow(/time limit/);
    expect(await bucket.head(keys.csv)).toBeNull();
    expect(await bucket.head(keys.manifest)).toBeNull();
    expect(await db.select().from(exportManifests).where(eq(exportManifests.hourStart, hour))).toEqual([]);

    expect((await runExport(hour, { partBytes: MIN_PART_BYTES })).status).toBe("exported");
    expect(await storedText(keys.csv)).toBe(expectedCsv(rows, hour));
  });

  it("adopts a CSV whose run died before its row was committed, from the stored bytes", async () => {
    const hour = freshHour();
    const rows = Array.from({ length: 30 }, (_, i) => invocation({ startedAt: at(hour, 60 * i) }));
    await seedInvocations(db, rows);
    const keys = exportKeys(hour);
    const original = await runExport(hour);
    const forgetRow = () => db.delete(exportManifests).where(eq(exportManifests.hourStart, hour));

    // The manifest object made it, the row did not: the stored manifest is kept as is.
    await forgetRow();
    const kept = await runExport(hour);
    expect(kept).toMatchObject({ status: "adopted", manifest: original.manifest });

    // Neither made it: a manifest is made from the stored CSV, describing the same bytes.
    await forgetRow();
    await bucket.delete(keys.manifest);
    const remade = await runExport(hour);
    expect(remade.status).toBe("adopted");
    expect(remade.manifest).toMatchObject({
      sha256: original.manifest?.sha256,
      merkle_root: original.manifest?.merkle_root,
      row_count: rows.length,
      byte_length: original.manifest?.byte_length,
    });
    expect(remade.manifest?.signature).not.toBe(original.manifest?.signature);
    expect(parseManifest(await storedText(keys.manifest))).toEqual(remade.manifest);
    expect((await runExport(hour)).status).toBe("existing");
  });

  it("lets only one of two concurrent exporters write an hour", async () => {
    const hour = freshHour();
    await seedInvocations(db, [invocation({ startedAt: at(hour, 1) })]);
    const other = openDatabase(config);
    try {
      const outcomes = await Promise.all([
        runExport(hour),
        withConnection(other.db, (connection) => exportHour(exportDeps(connection), hour)),
      ]);
      const statuses = outcomes.map((o) => o.status).sort();
      expect([
        ["busy", "exported"],
        ["existing", "exported"],
      ]).toContainEqual(statuses);
    } finally {
      await other.close();
    }
  });

  it("fails verification for a tampered CSV", async () => {
    const hour = freshHour();
    await seedInvocations(db, [
      invocation({ startedAt: at(hour, 1), completedAt: at(hour, 2), bounty: 5 }),
      invocation({ startedAt: at(hour, 3), completedAt: at(hour, 4) }),
    ]);
    const { manifest } = await runExport(hour);
    if (!manifest) throw new Error("no manifest");
    const original = await storedText(exportKeys(hour).csv);
    const tampered = original.replace(",5\r\n", ",6\r\n");
    expect(tampered).not.toBe(original);
    const digest = await digestExport(new Blob([tampered]).stream());
    const { problems } = checkManifest(manifest, digest);
    expect(problems.join("\n")).toMatch(/sha256/);
    expect(problems.join("\n")).toMatch(/Merkle root/);
    const forged = checkManifest({ ...manifest, sha256: digest.sha256, merkle_root: digest.merkleRoot }, digest);
    expect(forged.problems).toEqual([expect.stringMatching(/signature does not verify/)]);
  });
});

describe("export routes", () => {
  const path = (hourStart: Date, suffix = "csv") => {
    const end = new Date(hourStart.getTime() + HOUR);
    const p = (n: number) => String(n).padStart(2, "0");
    return `/invocations/exports/${end.getUTCFullYear()}/${p(end.getUTCMonth() + 1)}/${p(end.getUTCDate())}/${p(end.getUTCHours())}.${suffix}`;
  };

  it("streams an exported hour's CSV and manifest, named by the hour the window ends", async () => {
    const hour = freshHour();
    const rows = [invocation({ startedAt: at(hour, 42), completedAt: at(hour, 43) })];
    await seedInvocations(db, rows);
    await runExport(hour);
    const res = await callHost(API_HOST, path(hour));
    expect(res.status, `${path(hour)} ${await res.clone().text()}`).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    const end = new Date(hour.getTime() + HOUR).toISOString();
    expect(res.headers.get("content-disposition")).toBe(
      `attachment; filename="${end.slice(0, 10)}-${end.slice(11, 13)}.csv"`,
    );
    expect(await res.text()).toBe(expectedCsv(rows, hour));
    const manifest = await callHost(API_HOST, path(hour, "manifest.json"));
    expect(manifest.status).toBe(200);
    expect(parseManifest(await manifest.text()).key).toBe(exportKeys(hour).csv);
    // Unpadded numbers name the same file, as upstream's integer path parameters did.
    const end2 = new Date(hour.getTime() + HOUR);
    const unpadded = `/invocations/exports/${end2.getUTCFullYear()}/${end2.getUTCMonth() + 1}/${end2.getUTCDate()}/${end2.getUTCHours()}.csv`;
    expect((await callHost(API_HOST, unpadded)).status).toBe(200);
  });

  it("answers 400 for malformed dates and 404 for missing or future hours", async () => {
    for (const bad of [
      "/invocations/exports/2025/02/31/10.csv",
      "/invocations/exports/2025/13/01/10.csv",
      "/invocations/exports/2025/00/01/10.csv",
      "/invocations/exports/2025/01/01/24.csv",
      "/invocations/exports/20x5/01/01/10.csv",
      "/invocations/exports/2025/01/01/ten.csv",
      "/invocations/exports/2025/01/01/10-reports.csv",
      "/invocations/exports/2025/01/01/10.txt",
      "/invocations/exports/99999/01/01/10.csv",
    ]) {
      await expectError(await callHost(API_HOST, bad), 400, "bad_request");
    }
    const nextYear = new Date().getUTCFullYear() + 1;
    for (const missing of [
      `/invocations/exports/${nextYear}/01/01/00.csv`,
      "/invocations/exports/2024/12/20/07.csv",
      "/invocations/exports/2024/12/20/07.manifest.json",
    ]) {
      const body = await expectError(await callHost(API_HOST, missing), 404, "not_found");
      expect(body.detail).toMatch(/^Invocations export not found year=/);
    }
  });

  it("serves the last day's invocations live, newest first, without the parent id", async () => {
    const hotkey = randomHotkey();
    const now = Date.now();
    const text = (ms: number) => new Date(ms).toISOString().replace("T", " ").replace("Z", "000");
    const rows = [
      invocation({ minerHotkey: hotkey, startedAt: text(now - 3 * HOUR), completedAt: text(now - 3 * HOUR + 500) }),
      invocation({ minerHotkey: hotkey, startedAt: text(now - HOUR), errorMessage: "RATE_LIMIT", completedAt: null }),
      invocation({ minerHotkey: hotkey, startedAt: text(now - 25 * HOUR), completedAt: text(now - 25 * HOUR) }),
      invocation({ startedAt: text(now + 60_000), completedAt: null }),
    ];
    await seedInvocations(db, rows);
    const res = await callHost(API_HOST, `/invocations/exports/recent?hotkey=${hotkey}&limit=0`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toBe('attachment; filename="recent.csv"');
    const lines = (await res.text()).split("\r\n");
    expect(lines[0]).toBe(HEADER.slice("parent_invocation_id,".length));
    expect(lines.slice(1, -1).map((line) => line.split(",")[0])).toEqual([
      rows[1]?.invocationId,
      rows[0]?.invocationId,
    ]);
    expect(lines.at(-1)).toBe("");

    const newest = await (await callHost(API_HOST, "/invocations/exports/recent?limit=1")).text();
    expect(newest.split("\r\n")[1]?.split(",")[0]).toBe(rows[3]?.invocationId);
    await expectError(await callHost(API_HOST, "/invocations/exports/recent?hotkey=nope"), 422, "validation_failed");
    await expectError(await callHost(API_HOST, "/invocations/exports/recent?limit=many"), 422, "validation_failed");
  });
});

/** Fires the minute-1 export cron as the platform would right after `hour` ends, and waits for it. */
async function runExportCron(hour: Date): Promise<void> {
  const controller = createScheduledController({
    cron: "1 * * * *",
    scheduledTime: new Date(hour.getTime() + HOUR + 60_000),
  });
  const ctx = createExecutionContext();
  await worker.scheduled(controller, { ...env }, ctx);
  await waitOnExecutionContext(ctx);
}

describe("export cron", () => {
  it("flushes the metering shards first: an attempt that ended in the hour but was not yet in Postgres is exported", async () => {
    const hour = new Date(Date.UTC(2025, 6, 1) + Math.floor(Math.random() * 1000) * 5 * HOUR);
    const row = invocation({
      startedAt: at(hour, 3_500),
      completedAt: at(hour, 3_590),
      errorMessage: "CLIENT_DISCONNECTED",
    });
    // As the gateway hands it over: stored in a Metering shard, whose own flush is a second away.
    await meteringShard(config, 2).record([
      {
        ...row,
        startedAt: `${row.startedAt.replace(" ", "T")}Z`,
        completedAt: `${row.completedAt?.replace(" ", "T")}Z`,
        metrics: null,
        costUsd: 0,
        outcome: "neutral",
      },
    ]);
    await runExportCron(hour);
    expect(await storedText(exportKeys(hour).csv)).toBe(expectedCsv([row], hour));
  });

  it("exports the hour that just ended at minute 1, and catches up on missed hours", async () => {
    const hour = new Date(Date.UTC(2025, 0, 1) + Math.floor(Math.random() * 1000) * 5 * HOUR);
    const rows = [invocation({ startedAt: at(hour, 5), completedAt: at(hour, 6) })];
    await seedInvocations(db, rows);
    await runExportCron(hour);
    expect(await storedText(exportKeys(hour).csv)).toBe(expectedCsv(rows, hour));
    const exported = await db.execute<{ n: number }>(
      sql`select count(*)::int as n from export_manifests where hour_start between ${new Date(hour.getTime() - 2 * HOUR).toISOString()}::timestamptz and ${hour.toISOString()}::timestamptz`,
    );
    expect(exported.rows[0]?.n).toBe(3);
  });
});
