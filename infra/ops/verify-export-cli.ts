/**
 * @module `npm run verify-export -- <url-or-file> [options]`: an auditor's check of one
 * hourly export, from the CSV bytes alone (src/exports/verify.ts, the code the exporter
 * uses). It fetches or reads the CSV and the manifest beside it, recomputes SHA-256, the
 * row count and the Merkle root over the receipts, verifies the validator's sr25519
 * signature, and with `--invocation` prints one invocation's receipt and inclusion proof
 * and checks it. Exits 0 when everything agrees, 1 on any mismatch (a malformed CSV or
 * manifest included), 2 on bad usage or an input that cannot be read.
 *
 *   --manifest <url-or-file>  the manifest (default: beside the CSV, `HH.manifest.json`)
 *   --validator <ss58>        the hotkey that must have signed it
 *   --invocation <id>         prove this invocation's inclusion
 */
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { ExportFormatError } from "../../src/exports/csv.ts";
import { parseManifest } from "../../src/exports/manifest.ts";
import { checkManifest, digestExport, inclusionJson, verifyInclusion } from "../../src/exports/verify.ts";
import { nodeSha256 } from "./node-sha256.ts";

const USAGE =
  "usage: npm run verify-export -- <csv url or file> [--manifest <url or file>] [--validator <ss58>] [--invocation <id>]";

const isUrl = (source: string) => /^https?:\/\//.test(source);

async function readText(source: string): Promise<string> {
  if (!isUrl(source)) return readFile(source, "utf8");
  const res = await fetch(source);
  if (!res.ok) throw new Error(`${source}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
  return res.text();
}

async function openBytes(source: string): Promise<AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>> {
  if (!isUrl(source)) return createReadStream(source);
  const res = await fetch(source);
  if (!res.ok || !res.body) throw new Error(`${source}: HTTP ${res.status}`);
  return res.body;
}

/** The R2 key an export URL names (`…/exports/2026/1/5/9.csv` → `invocations/2026/01/05/09.csv`). */
function keyOfUrl(source: string): string | undefined {
  const match = /\/invocations\/exports\/(\d{4})\/(\d{1,2})\/(\d{1,2})\/(\d{1,2})\.csv$/.exec(new URL(source).pathname);
  if (!match) return undefined;
  const [, y, m, d, h] = match.map((part) => (part ?? "").padStart(2, "0"));
  return `invocations/${y}/${m}/${d}/${h}.csv`;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      manifest: { type: "string" },
      validator: { type: "string" },
      invocation: { type: "string" },
    },
  });
  const [csv] = positionals;
  if (!csv || positionals.length !== 1) {
    console.error(USAGE);
    return 2;
  }
  const manifestSource = values.manifest ?? csv.replace(/\.csv$/, ".manifest.json");
  if (manifestSource === csv) {
    console.error(`${USAGE}\n(the CSV's name must end in .csv, or give --manifest)`);
    return 2;
  }

  const manifestText = await readText(manifestSource);
  const bytes = await openBytes(csv);
  let manifest: ReturnType<typeof parseManifest>;
  let digest: Awaited<ReturnType<typeof digestExport>>;
  try {
    manifest = parseManifest(manifestText);
    digest = await digestExport(bytes, {
      sha256: nodeSha256,
      prove: values.invocation ? { invocationId: values.invocation, treeSize: manifest.row_count } : undefined,
    });
  } catch (error) {
    if (!(error instanceof ExportFormatError)) throw error;
    console.error(`MISMATCH: ${error.message}`);
    return 1;
  }
  const { problems } = checkManifest(manifest, digest, {
    validator: values.validator,
    key: isUrl(csv) ? keyOfUrl(csv) : undefined,
  });

  console.log(`export      ${manifest.key} (${manifest.hour_start} – ${manifest.hour_end})`);
  console.log(`validator   ${manifest.validator}`);
  console.log(`rows        ${digest.rowCount}`);
  console.log(`bytes       ${digest.byteLength}`);
  console.log(`sha256      ${digest.sha256}`);
  console.log(`merkle root ${digest.merkleRoot}`);
  if (values.invocation) {
    if (!digest.inclusion) {
      problems.push(`invocation ${values.invocation} is not in this export`);
    } else {
      console.log(JSON.stringify(inclusionJson(digest.inclusion, manifest.merkle_root), null, 2));
      if (verifyInclusion(digest.inclusion, manifest.merkle_root)) console.log("inclusion proof verified");
      else problems.push("the inclusion proof does not lead to the manifest's Merkle root");
    }
  }
  for (const problem of problems) console.error(`MISMATCH: ${problem}`);
  if (problems.length > 0) return 1;
  console.log("OK: hash, row count, Merkle root and signature agree with the manifest");
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`verify-export: ${error.message}`);
    process.exit(2);
  },
);
