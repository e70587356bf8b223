/**
 * The auditors' verifier (`npm run verify-export`, infra/ops/verify-export-cli.ts) as a
 * process, on files and over HTTP: it accepts an export its manifest describes, proves
 * an invocation's inclusion, and exits 1 on a tampered CSV, a foreign signer, a manifest
 * for another hour or an unknown invocation.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signerFromSeed } from "../../src/chain/keys.ts";
import { CRLF, EXPORT_COLUMNS, headerRecord } from "../../src/exports/csv.ts";
import { exportKeys, manifestBody, serializeManifest, signManifest } from "../../src/exports/manifest.ts";
import { digestExport } from "../../src/exports/verify.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CLI = path.join(ROOT, "infra/ops/verify-export-cli.ts");
const signer = signerFromSeed(`0x${"2a".repeat(32)}`);
const hourStart = new Date("2026-03-04T09:00:00Z");

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** An export of `count` invocations, built and signed with the exporter's own code. */
async function makeExport(count: number) {
  const ids = Array.from({ length: count }, (_, i) => `inv-${i}-${crypto.randomUUID()}`);
  // Records as the exporter writes them (the verifier only needs well-formed CSV).
  const quote = (field: string) => (/[",\r\n]/.test(field) ? `"${field.replaceAll('"', '""')}"` : field);
  const records = ids.map((id, i) =>
    [
      `parent-${i}`,
      id,
      "chute",
      "owner",
      i % 5 === 0 ? "fn, with comma" : "fn",
      "image",
      "owner",
      `instance-${i % 7}`,
      String(1 + (i % 4)),
      "5Hk",
      `2026-03-04 09:${String(i % 60).padStart(2, "0")}:00.${String(i + 1).padStart(6, "0")}`,
      i % 9 === 0 ? "" : "2026-03-04 09:59:59",
      i % 11 === 0 ? 'broke "here"\nand here' : "",
      "0.087671",
      String(i % 3),
    ]
      .map(quote)
      .join(","),
  );
  const csv = [headerRecord(EXPORT_COLUMNS), ...records].map((r) => r + CRLF).join("");
  const digest = await digestExport([new TextEncoder().encode(csv)]);
  const manifest = signManifest(manifestBody(signer.hotkey, { hourStart, ...digest, createdAt: new Date() }), signer);
  return { ids, csv, manifest };
}

let dir: string;
let csvFile: string;
let exported: Awaited<ReturnType<typeof makeExport>>;
let server: Server;
let base: string;
const served = new Map<string, string>();

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "verify-export-"));
  exported = await makeExport(37);
  csvFile = path.join(dir, "10.csv");
  writeFileSync(csvFile, exported.csv);
  writeFileSync(path.join(dir, "10.manifest.json"), serializeManifest(exported.manifest));
  server = createServer((req, res) => {
    const body = served.get(req.url ?? "");
    res.writeHead(body === undefined ? 404 : 200).end(body ?? "not found");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await new Promise((resolve) => server.close(resolve));
});

describe("npm run verify-export", () => {
  it("accepts an export whose hash, rows, Merkle root and signature agree, and proves an invocation", async () => {
    const target = exported.ids[22] ?? "";
    const result = await run([csvFile, "--validator", signer.hotkey, "--invocation", target]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`rows        37`);
    expect(result.stdout).toContain(`sha256      ${exported.manifest.sha256}`);
    expect(result.stdout).toContain("inclusion proof verified");
    const proof = JSON.parse(result.stdout.slice(result.stdout.indexOf("{"), result.stdout.lastIndexOf("}") + 1));
    expect(proof).toMatchObject({ invocation_id: target, leaf_index: 22, tree_size: 37 });
    expect(proof.audit_path).toHaveLength(6);
    expect(result.stdout).toMatch(/^OK: /m);
  });

  it("fails on a tampered CSV, a foreign signer or an unknown invocation", async () => {
    const tampered = path.join(dir, "tampered.csv");
    writeFileSync(tampered, exported.csv.replace("fn, with comma", "fn, with comme"));
    const manifest = path.join(dir, "10.manifest.json");
    const bad = await run([tampered, "--manifest", manifest]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/MISMATCH: sha256/);
    expect(bad.stderr).toMatch(/MISMATCH: Merkle root/);

    const truncated = path.join(dir, "truncated.csv");
    writeFileSync(truncated, exported.csv.slice(0, -1));
    expect((await run([truncated, "--manifest", manifest])).code).toBe(1);

    const foreign = await run([csvFile, "--validator", signerFromSeed(`0x${"2b".repeat(32)}`).hotkey]);
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toMatch(/expected/);

    const unknown = await run([csvFile, "--invocation", "no-such-invocation"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/not in this export/);

    const forged = path.join(dir, "forged.manifest.json");
    writeFileSync(forged, serializeManifest({ ...exported.manifest, row_count: 36 }));
    const forgedRun = await run([csvFile, "--manifest", forged]);
    expect(forgedRun.code).toBe(1);
    expect(forgedRun.stderr).toMatch(/signature does not verify/);
  });

  it("fetches the CSV and the manifest beside it over HTTP, and checks the manifest names that hour", async () => {
    const route = "/invocations/exports/2026/03/04/10";
    expect(exportKeys(hourStart).csv).toBe("invocations/2026/03/04/10.csv");
    served.set(`${route}.csv`, exported.csv);
    served.set(`${route}.manifest.json`, serializeManifest(exported.manifest));
    const ok = await run([`${base}${route}.csv`]);
    expect(ok.code).toBe(0);

    // The same, valid files served as another hour: the manifest gives the swap away.
    served.set("/invocations/exports/2026/03/04/11.csv", exported.csv);
    served.set("/invocations/exports/2026/03/04/11.manifest.json", serializeManifest(exported.manifest));
    const moved = await run([`${base}/invocations/exports/2026/03/04/11.csv`]);
    expect(moved.code).toBe(1);
    expect(moved.stderr).toMatch(/the manifest is for invocations\/2026\/03\/04\/10\.csv/);

    const missing = await run([`${base}/invocations/exports/2026/03/04/12.csv`]);
    expect(missing.code).toBe(2);
    expect((await run([])).code).toBe(2);
    expect(readFileSync(csvFile, "utf8")).toBe(exported.csv);
  });
});
