/**
 * The export's CSV format, Merkle tree and manifest (src/exports/), against known
 * answers: CPython's own repr() and csv.writer output (fixtures/python-csv.json, made by
 * fixtures/python-csv.py; the records Postgres renders are checked against the same file
 * in test/workers/exports.test.ts), and a direct recursive RFC 6962 implementation.
 */
import { sha256 } from "@noble/hashes/sha2";
import { describe, expect, it } from "vitest";
import { signerFromSeed } from "../../src/chain/keys.ts";
import { ExportFormatError, formatRecord, parseRecord, pythonFloatRepr } from "../../src/exports/csv.ts";
import {
  canonicalJson,
  exportKeys,
  manifestBody,
  parseManifest,
  serializeManifest,
  signManifest,
  verifyManifestSignature,
} from "../../src/exports/manifest.ts";
import {
  auditPathRanges,
  EMPTY_ROOT,
  leafHash,
  MerkleBuilder,
  nodeHash,
  ProofBuilder,
  rootFromInclusionProof,
} from "../../src/exports/merkle.ts";
import { Sha256Block } from "../../src/exports/sha256-block.ts";
import { digestExport, RecordSplitter } from "../../src/exports/verify.ts";
import { toHex, utf8 } from "../../src/lib/bytes.ts";
import python from "./fixtures/python-csv.json";

function bitsToFloat(hex: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

/** MTH(D[n]) exactly as RFC 6962 §2.1 defines it, recursively. */
function referenceRoot(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  if (leaves.length === 1) return leaves[0] as Uint8Array;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(referenceRoot(leaves.slice(0, k)), referenceRoot(leaves.slice(k)));
}

/** PATH(m, D[n]) as RFC 6962 §2.1.1 defines it, recursively. */
function referencePath(m: number, leaves: Uint8Array[]): Uint8Array[] {
  if (leaves.length <= 1) return [];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return m < k
    ? [...referencePath(m, leaves.slice(0, k)), referenceRoot(leaves.slice(k))]
    : [...referencePath(m - k, leaves.slice(k)), referenceRoot(leaves.slice(0, k))];
}

const leavesOf = (n: number) => Array.from({ length: n }, (_, i) => leafHash(utf8(`receipt ${i}`)));

describe("Python-compatible CSV", () => {
  it(`renders floats exactly as CPython ${python.python}'s repr()`, () => {
    expect(python.floats.length).toBeGreaterThan(300);
    for (const [bits, repr] of python.floats) {
      expect(pythonFloatRepr(bitsToFloat(bits as string)), bits).toBe(repr);
    }
  });

  it("joins Postgres's rendering with the float's repr, with or without the parent id", () => {
    const row = ['"p,1"', "i1,c1,,7", 1e-5, "100"];
    expect(formatRecord(row)).toBe('"p,1",i1,c1,,7,1e-05,100');
    expect(formatRecord(row, false)).toBe("i1,c1,,7,1e-05,100");
    expect(formatRecord(["p", "i", 0.087671, "0"])).toBe("p,i,0.087671,0");
  });

  it("parses CPython's records back into their fields", () => {
    for (const [i, record] of python.csv.records.entries()) {
      const row = python.csv.rows[i] as (string | number | null)[];
      const fields = parseRecord(record);
      expect(fields).toHaveLength(15);
      expect(fields?.[2]).toBe(row[2]);
      expect(fields?.[12]).toBe(row[12] ?? "");
    }
    expect(parseRecord('a,"b""c",')).toEqual(["a", 'b"c', ""]);
    expect(parseRecord('a,"unterminated')).toBeNull();
    expect(parseRecord('a,b"c')).toBeNull();
  });
});

describe("allocation-free SHA-256", () => {
  it("equals @noble/hashes for every length across the padding boundaries, and at offsets", () => {
    const hasher = new Sha256Block();
    const out = new Uint8Array(40);
    for (let length = 0; length <= 300; length++) {
      const data = crypto.getRandomValues(new Uint8Array(length));
      hasher.hashInto(data, out, 8);
      expect(toHex(out.slice(8)), `length ${length}`).toBe(toHex(sha256(data)));
    }
    const big = Uint8Array.from({ length: 200_013 }, (_, i) => (i * 2654435761) >>> 24);
    hasher.hashInto(big, out, 0);
    expect(toHex(out.slice(0, 32))).toBe(toHex(sha256(big)));
  });
});

describe("Merkle tree (RFC 6962)", () => {
  it("streams the same root as the recursive definition, for every size up to 70", () => {
    expect(toHex(new MerkleBuilder().root())).toBe(toHex(EMPTY_ROOT));
    for (let n = 0; n <= 70; n++) {
      const leaves = leavesOf(n);
      const builder = new MerkleBuilder();
      for (const leaf of leaves) builder.add(leaf);
      expect(toHex(builder.root()), `n=${n}`).toBe(toHex(referenceRoot(leaves)));
    }
  });

  it("builds and verifies every inclusion proof in one pass, for every leaf of trees up to 40", () => {
    for (let n = 1; n <= 40; n++) {
      const leaves = leavesOf(n);
      const root = referenceRoot(leaves);
      for (let m = 0; m < n; m++) {
        const builder = new MerkleBuilder();
        let proof: ProofBuilder | null = null;
        for (const [i, leaf] of leaves.entries()) {
          if (proof) proof.add(leaf);
          else if (i === m) proof = new ProofBuilder(n, leaf, builder);
          builder.add(leaf);
        }
        const made = proof?.finish();
        expect(made?.path.map(toHex), `n=${n} m=${m}`).toEqual(referencePath(m, leaves).map(toHex));
        expect(auditPathRanges(m, n)).toHaveLength(referencePath(m, leaves).length);
        const leaf = leaves[m] as Uint8Array;
        expect(toHex(rootFromInclusionProof(m, n, leaf, made?.path ?? []) ?? new Uint8Array())).toBe(toHex(root));
      }
    }
  });

  it("rejects proofs for another leaf, index or size", () => {
    const leaves = leavesOf(13);
    const root = toHex(referenceRoot(leaves));
    const path = referencePath(5, leaves);
    const check = (m: number, n: number, leaf: Uint8Array, p: Uint8Array[]) => {
      const computed = rootFromInclusionProof(m, n, leaf, p);
      return computed !== null && toHex(computed) === root;
    };
    expect(check(5, 13, leaves[5] as Uint8Array, path)).toBe(true);
    expect(check(5, 13, leaves[6] as Uint8Array, path)).toBe(false);
    expect(check(4, 13, leaves[5] as Uint8Array, path)).toBe(false);
    expect(check(5, 17, leaves[5] as Uint8Array, path)).toBe(false);
    expect(check(5, 13, leaves[5] as Uint8Array, path.slice(1))).toBe(false);
    expect(check(13, 13, leaves[5] as Uint8Array, path)).toBe(false);
  });
});

describe("export manifest", () => {
  const signer = signerFromSeed(`0x${"07".repeat(32)}`);
  const hourStart = new Date("2026-11-22T23:00:00Z");
  const body = manifestBody(signer.hotkey, {
    hourStart,
    rowCount: 2,
    byteLength: 300,
    sha256: "ab".repeat(32),
    merkleRoot: "cd".repeat(32),
    createdAt: new Date("2026-11-23T00:01:02.345Z"),
  });

  it("names the file by the hour its window ends (the next day at midnight)", () => {
    expect(exportKeys(hourStart)).toEqual({
      csv: "invocations/2026/11/23/00.csv",
      manifest: "invocations/2026/11/23/00.manifest.json",
    });
    expect(body).toMatchObject({ hour_start: "2026-11-22T23:00:00Z", hour_end: "2026-11-23T00:00:00Z" });
  });

  it("signs the canonical JSON, verifies, and detects any change", () => {
    const manifest = signManifest(body, signer);
    expect(verifyManifestSignature(manifest)).toBe(true);
    const stored = serializeManifest(manifest);
    expect(stored.endsWith("}\n")).toBe(true);
    expect(parseManifest(stored)).toEqual(manifest);
    expect(verifyManifestSignature({ ...manifest, row_count: 3 })).toBe(false);
    expect(verifyManifestSignature({ ...manifest, validator: signerFromSeed(`0x${"08".repeat(32)}`).hotkey })).toBe(
      false,
    );
    expect(() => parseManifest('{"kind":"x"}')).toThrow(/malformed/);
    expect(() => signManifest({ ...body, validator: signerFromSeed(`0x${"08".repeat(32)}`).hotkey }, signer)).toThrow();
  });

  it("canonicalises with sorted keys and no whitespace, as Python's json.dumps(sort_keys=True) does", () => {
    expect(canonicalJson({ b: 1, a: [2, { d: "x", c: null }], e: "é" })).toBe(
      '{"a":[2,{"c":null,"d":"x"}],"b":1,"e":"é"}',
    );
  });
});

describe("digesting an export", () => {
  const header = "parent_invocation_id,invocation_id";
  const file = (records: string[]) => utf8(records.map((r) => `${r}\r\n`).join(""));

  it("splits records at CRLF outside quotes, across any chunk boundary", () => {
    const expected = python.csv.records;
    const bytes = utf8(expected.map((r) => `${r}\r\n`).join(""));
    for (const size of [1, 2, 3, 7, 64, bytes.length]) {
      const splitter = new RecordSplitter();
      const got: string[] = [];
      for (let i = 0; i < bytes.length; i += size) {
        splitter.push(bytes.slice(i, i + size), (r) => got.push(new TextDecoder().decode(r)));
      }
      splitter.end();
      expect(got, `chunks of ${size}`).toEqual(expected);
    }
  });

  it("refuses files that are not CRLF-terminated CSV", () => {
    const refuse = (text: string) => {
      const splitter = new RecordSplitter();
      splitter.push(utf8(text), () => {});
      splitter.end();
    };
    expect(() => refuse("a,b\n")).toThrow(ExportFormatError);
    expect(() => refuse("a,b\r\nc")).toThrow(/not terminated/);
    expect(() => refuse('a,"b\r\n')).toThrow(/inside a quoted field/);
  });

  it("hashes the file, roots the receipts (header excluded) and proves one invocation", async () => {
    const records = python.csv.records;
    const bytes = file([header, ...records]);
    const chunks = async function* () {
      for (let i = 0; i < bytes.length; i += 5) yield bytes.slice(i, i + 5);
    };
    const columns = ["parent_invocation_id", "invocation_id"];
    const digest = await digestExport(chunks(), { columns, prove: { invocationId: "i3", treeSize: records.length } });
    expect(digest.rowCount).toBe(records.length);
    expect(digest.byteLength).toBe(bytes.length);
    expect(digest.sha256).toBe(toHex(sha256(bytes)));
    expect(digest.merkleRoot).toBe(toHex(referenceRoot(records.map((r) => leafHash(utf8(r))))));
    expect(digest.inclusion).toMatchObject({ invocationId: "i3", receipt: records[2], proof: { index: 2, size: 4 } });
    await expect(digestExport([file(["wrong,header"])], { columns })).rejects.toThrow(/unexpected header/);
  });
});
