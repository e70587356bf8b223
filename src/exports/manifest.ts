/**
 * @module The hourly export's R2 layout and its signed manifest (docs/protocols.md,
 * "Exports").
 *
 * Keys follow upstream: a file is named by the hour its window ENDS, so
 * `invocations/2026/11/22/10.csv` covers 09:00–10:00 UTC; the manifest sits beside it
 * as `…/10.manifest.json`. The manifest is JSON; its signature is sr25519 by the
 * validator hotkey over the canonical serialisation of every other field (keys sorted,
 * no whitespace; every value is ASCII text, an integer or a list/object of those, so
 * `json.dumps(body, sort_keys=True, separators=(",", ":"))` reproduces it in Python).
 */
import { z } from "zod";
import type { HotkeySigner } from "../chain/keys.ts";
import { toHex, utf8 } from "../lib/bytes.ts";
import { ss58PublicKey, verifySr25519 } from "../lib/sr25519.ts";
import { EXPORT_COLUMNS, ExportFormatError } from "./csv.ts";

export const HOUR_MS = 3_600_000;
export const MANIFEST_KIND = "chutes-edge/invocation-export";
export const MANIFEST_VERSION = 1;
export const MANIFEST_ALGORITHMS = {
  file_hash: "sha256",
  receipt: "csv-record-utf8",
  leaf_hash: "sha256(0x00||receipt)",
  merkle: "rfc6962-sha256",
  signature: "sr25519-substrate",
} as const;

const pad = (n: number) => String(n).padStart(2, "0");

/** The hour (UTC, minute 0) that contains `at`. */
export function hourFloor(at: Date): Date {
  return new Date(Math.floor(at.getTime() / HOUR_MS) * HOUR_MS);
}

/** `invocations/YYYY/MM/DD/HH` of the hour that ENDS at `hourEnd`. */
function keyStem(hourEnd: Date): string {
  const y = hourEnd.getUTCFullYear();
  return `invocations/${y}/${pad(hourEnd.getUTCMonth() + 1)}/${pad(hourEnd.getUTCDate())}/${pad(hourEnd.getUTCHours())}`;
}

export interface ExportKeys {
  csv: string;
  manifest: string;
}

/** The R2 keys of the export covering [hourStart, hourStart + 1 h). */
export function exportKeys(hourStart: Date): ExportKeys {
  const stem = keyStem(new Date(hourStart.getTime() + HOUR_MS));
  return { csv: `${stem}.csv`, manifest: `${stem}.manifest.json` };
}

/** ISO 8601 without milliseconds when they are zero: `2026-11-22T09:00:00Z`. */
export function isoSeconds(at: Date): string {
  return at.toISOString().replace(".000Z", "Z");
}

const hex32 = z.string().regex(/^[0-9a-f]{64}$/);

export const manifestBodySchema = z.object({
  kind: z.literal(MANIFEST_KIND),
  version: z.literal(MANIFEST_VERSION),
  validator: z.string().refine((v) => ss58PublicKey(v) !== null, { message: "must be an ss58 address" }),
  hour_start: z.string(),
  hour_end: z.string(),
  key: z.string(),
  columns: z.array(z.string()),
  row_count: z.number().int().min(0),
  byte_length: z.number().int().min(0),
  sha256: hex32,
  merkle_root: hex32,
  algorithms: z.object({
    file_hash: z.literal(MANIFEST_ALGORITHMS.file_hash),
    receipt: z.literal(MANIFEST_ALGORITHMS.receipt),
    leaf_hash: z.literal(MANIFEST_ALGORITHMS.leaf_hash),
    merkle: z.literal(MANIFEST_ALGORITHMS.merkle),
    signature: z.literal(MANIFEST_ALGORITHMS.signature),
  }),
  created_at: z.string(),
});

export const manifestSchema = manifestBodySchema.extend({ signature: z.string().regex(/^[0-9a-f]{128}$/) });

export type ManifestBody = z.infer<typeof manifestBodySchema>;
export type ExportManifest = z.infer<typeof manifestSchema>;

/** JSON with object keys sorted at every level and no whitespace (what is signed). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export interface ManifestFacts {
  hourStart: Date;
  rowCount: number;
  byteLength: number;
  sha256: string;
  merkleRoot: string;
  createdAt: Date;
}

export function manifestBody(validator: string, facts: ManifestFacts): ManifestBody {
  return {
    kind: MANIFEST_KIND,
    version: MANIFEST_VERSION,
    validator,
    hour_start: isoSeconds(facts.hourStart),
    hour_end: isoSeconds(new Date(facts.hourStart.getTime() + HOUR_MS)),
    key: exportKeys(facts.hourStart).csv,
    columns: [...EXPORT_COLUMNS],
    row_count: facts.rowCount,
    byte_length: facts.byteLength,
    sha256: facts.sha256,
    merkle_root: facts.merkleRoot,
    algorithms: { ...MANIFEST_ALGORITHMS },
    created_at: facts.createdAt.toISOString(),
  };
}

export function signManifest(body: ManifestBody, signer: HotkeySigner): ExportManifest {
  if (body.validator !== signer.hotkey) throw new Error("the manifest names another validator than the signer");
  return { ...body, signature: toHex(signer.sign(utf8(canonicalJson(body)))) };
}

/** The stored form: canonical JSON of the whole manifest, newline-terminated. */
export function serializeManifest(manifest: ExportManifest): string {
  return `${canonicalJson(manifest)}\n`;
}

/** True when `signature` is the named validator's signature over the rest. */
export function verifyManifestSignature(manifest: ExportManifest): boolean {
  const { signature, ...body } = manifest;
  const publicKey = ss58PublicKey(manifest.validator);
  return publicKey !== null && verifySr25519(canonicalJson(body), signature, publicKey);
}

/** Parses a stored manifest; the error names what is wrong. */
export function parseManifest(text: string): ExportManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ExportFormatError("the manifest is not JSON");
  }
  const parsed = manifestSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ExportFormatError(`the manifest is malformed: ${issue?.path.join(".")}: ${issue?.message}`);
  }
  return parsed.data;
}
