/**
 * @module Recomputing what an export's manifest claims, from the CSV bytes alone, in one
 * streaming pass with flat memory: SHA-256 of the file, the row count, the Merkle root
 * over the receipts, and optionally the inclusion proof of one invocation. The verifier
 * CLI, the exporter (adopting a CSV whose manifest was never written) and the tests
 * share it, so there is one definition of a receipt:
 *
 * receipt = the bytes of one data record exactly as the file holds them (UTF-8, quotes
 * included, without the terminating CRLF); the header record is not a receipt.
 */
import { toHex } from "../lib/bytes.ts";
import { EXPORT_COLUMNS, ExportFormatError, headerRecord, parseRecord } from "./csv.ts";
import { type ExportManifest, verifyManifestSignature } from "./manifest.ts";
import { type InclusionProof, leafHash, MerkleBuilder, ProofBuilder, rootFromInclusionProof } from "./merkle.ts";
import { nobleSha256, type Sha256Factory } from "./sha256.ts";

const QUOTE = 0x22;
const CR = 0x0d;
const LF = 0x0a;

/**
 * Cuts a byte stream into CSV records at CRLFs outside quotes. Records are handed out as
 * views that are valid only during the callback.
 */
export class RecordSplitter {
  #carry = new Uint8Array(0);
  #inQuotes = false;

  push(chunk: Uint8Array, onRecord: (record: Uint8Array) => void): void {
    const scanned = this.#carry.length;
    let buf = chunk;
    if (scanned > 0) {
      buf = new Uint8Array(scanned + chunk.length);
      buf.set(this.#carry);
      buf.set(chunk, scanned);
    }
    let start = 0;
    let inQuotes = this.#inQuotes;
    for (let i = scanned; i < buf.length; i++) {
      const byte = buf[i];
      if (byte === QUOTE) inQuotes = !inQuotes;
      else if (!inQuotes && byte === LF) {
        if (i === 0 || buf[i - 1] !== CR) throw new ExportFormatError("a line ends in LF without CR");
        onRecord(buf.subarray(start, i - 1));
        start = i + 1;
      } else if (!inQuotes && byte === CR && i + 1 < buf.length && buf[i + 1] !== LF) {
        throw new ExportFormatError("a CR outside quotes is not followed by LF");
      }
    }
    this.#inQuotes = inQuotes;
    this.#carry = buf.slice(start);
  }

  end(): void {
    if (this.#inQuotes) throw new ExportFormatError("the file ends inside a quoted field");
    if (this.#carry.length > 0) throw new ExportFormatError("the last record is not terminated by CRLF");
  }
}

export interface Inclusion {
  invocationId: string;
  /** The receipt as text, and its fields. */
  receipt: string;
  fields: Record<string, string>;
  proof: InclusionProof;
}

export interface ExportDigest {
  rowCount: number;
  byteLength: number;
  sha256: string;
  merkleRoot: string;
  /** Set when `prove` was asked for and the invocation is in the file. */
  inclusion: Inclusion | null;
}

export interface DigestOptions {
  sha256?: Sha256Factory;
  /** Prove this invocation's inclusion; the proof needs the tree size (the manifest's row count). */
  prove?: { invocationId: string; treeSize: number };
  columns?: readonly string[];
}

export type ByteSource = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

async function* chunksOf(source: ByteSource): AsyncIterable<Uint8Array> {
  if (!(source instanceof ReadableStream)) {
    yield* source;
    return;
  }
  const reader = source.getReader();
  try {
    for (let next = await reader.read(); !next.done; next = await reader.read()) yield next.value;
  } finally {
    reader.releaseLock();
  }
}

/** Hashes, counts and Merkle-roots an export from its bytes. */
export async function digestExport(source: ByteSource, options: DigestOptions = {}): Promise<ExportDigest> {
  const columns = options.columns ?? EXPORT_COLUMNS;
  const expectedHeader = headerRecord(columns);
  const idColumn = columns.indexOf("invocation_id");
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const fileHash = (options.sha256 ?? nobleSha256)();
  const tree = new MerkleBuilder();
  const splitter = new RecordSplitter();
  const target = options.prove;
  let header: string | null = null;
  let byteLength = 0;
  let found: { receipt: string; fields: string[]; builder: ProofBuilder } | null = null;

  const onRecord = (record: Uint8Array) => {
    if (header === null) {
      header = decoder.decode(record);
      if (header !== expectedHeader) throw new ExportFormatError(`unexpected header: ${header.slice(0, 200)}`);
      return;
    }
    const leaf = leafHash(record);
    if (found) found.builder.add(leaf);
    else if (target && idColumn >= 0) {
      const text = decoder.decode(record);
      if (text.includes(target.invocationId)) {
        const fields = parseRecord(text);
        if (fields?.[idColumn] === target.invocationId) {
          found = { receipt: text, fields, builder: new ProofBuilder(target.treeSize, leaf, tree) };
        }
      }
    }
    tree.add(leaf);
  };

  for await (const chunk of chunksOf(source)) {
    byteLength += chunk.length;
    await fileHash.update(chunk);
    splitter.push(chunk, onRecord);
  }
  splitter.end();
  if (header === null) throw new ExportFormatError("the file is empty: no header record");

  let inclusion: Inclusion | null = null;
  const hit = found as { receipt: string; fields: string[]; builder: ProofBuilder } | null;
  const proof = hit?.builder.finish();
  if (hit && proof && target) {
    inclusion = {
      invocationId: target.invocationId,
      receipt: hit.receipt,
      fields: Object.fromEntries(columns.map((name, i) => [name, hit.fields[i] ?? ""])),
      proof,
    };
  }
  return {
    rowCount: tree.count,
    byteLength,
    sha256: toHex(await fileHash.digest()),
    merkleRoot: toHex(tree.root()),
    inclusion,
  };
}

/** Whether an inclusion proof leads from its receipt to `merkleRoot`. */
export function verifyInclusion(inclusion: Inclusion, merkleRoot: string): boolean {
  const root = rootFromInclusionProof(
    inclusion.proof.index,
    inclusion.proof.size,
    inclusion.proof.leaf,
    inclusion.proof.path,
  );
  const leaf = leafHash(new TextEncoder().encode(inclusion.receipt));
  return root !== null && toHex(root) === merkleRoot && toHex(leaf) === toHex(inclusion.proof.leaf);
}

export interface ManifestCheck {
  /** Every mismatch, in words; empty when the export verifies. */
  problems: string[];
}

/**
 * Compares a recomputed digest with its manifest and checks the signature (and, when
 * given, that the signer is the expected validator and the manifest names this file).
 */
export function checkManifest(
  manifest: ExportManifest,
  digest: ExportDigest,
  expect: { validator?: string; key?: string } = {},
): ManifestCheck {
  const problems: string[] = [];
  if (!verifyManifestSignature(manifest)) problems.push(`the signature does not verify for ${manifest.validator}`);
  if (expect.validator && manifest.validator !== expect.validator) {
    problems.push(`signed by ${manifest.validator}, expected ${expect.validator}`);
  }
  if (expect.key && manifest.key !== expect.key)
    problems.push(`the manifest is for ${manifest.key}, not ${expect.key}`);
  if (digest.sha256 !== manifest.sha256) problems.push(`sha256 ${digest.sha256} ≠ manifest ${manifest.sha256}`);
  if (digest.rowCount !== manifest.row_count) {
    problems.push(`${digest.rowCount} rows ≠ manifest ${manifest.row_count}`);
  }
  if (digest.byteLength !== manifest.byte_length) {
    problems.push(`${digest.byteLength} bytes ≠ manifest ${manifest.byte_length}`);
  }
  if (digest.merkleRoot !== manifest.merkle_root) {
    problems.push(`Merkle root ${digest.merkleRoot} ≠ manifest ${manifest.merkle_root}`);
  }
  return { problems };
}

/** A proof in the JSON shape the CLI prints (hex everywhere). */
export function inclusionJson(inclusion: Inclusion, merkleRoot: string) {
  return {
    invocation_id: inclusion.invocationId,
    receipt: inclusion.receipt,
    leaf_index: inclusion.proof.index,
    tree_size: inclusion.proof.size,
    leaf_hash: toHex(inclusion.proof.leaf),
    audit_path: inclusion.proof.path.map(toHex),
    merkle_root: merkleRoot,
  };
}
