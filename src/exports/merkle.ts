/**
 * @module The Merkle tree over an export's receipts: RFC 6962 / RFC 9162 §2.1 with
 * SHA-256 (leaf = H(0x00 ‖ receipt), node = H(0x01 ‖ left ‖ right), the empty tree =
 * H("")), so any Certificate-Transparency-style tooling can check our proofs.
 *
 * Built in one streaming pass with O(log n) memory: the RFC's tree over n leaves is the
 * perfect subtrees of n's binary decomposition, joined right to left, so a stack of
 * perfect-subtree roots (a binary counter) is all the state a million-row export needs.
 * Inclusion proofs are produced the same way (`ProofBuilder`): the left siblings of leaf
 * m are exactly the stack at m, the right ones are roots of ranges after m, each built
 * by its own small stack, so the verifier never holds the leaves either.
 */
import { Sha256Block } from "./sha256-block.ts";

export const LEAF_PREFIX = 0x00;
export const NODE_PREFIX = 0x01;

// JavaScript runs one call at a time and nothing here awaits, so one hasher and one
// scratch buffer serve every call.
const hasher = new Sha256Block();
const pair = new Uint8Array(65);
pair[0] = NODE_PREFIX;
let leafScratch = new Uint8Array(1024);

function copy32(from: Uint8Array, fromOffset: number, to: Uint8Array, toOffset: number): void {
  for (let i = 0; i < 32; i++) to[toOffset + i] = from[fromOffset + i] as number;
}

/** H(0x01 ‖ left ‖ right) into `out` at `offset`. */
function nodeHashInto(
  left: Uint8Array,
  leftOffset: number,
  right: Uint8Array,
  rightOffset: number,
  out: Uint8Array,
  offset: number,
): void {
  copy32(left, leftOffset, pair, 1);
  copy32(right, rightOffset, pair, 33);
  hasher.hashInto(pair, out, offset);
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  nodeHashInto(left, 0, right, 0, out, 0);
  return out;
}

/** H(0x00 ‖ receipt). */
export function leafHash(receipt: Uint8Array): Uint8Array {
  if (leafScratch.length < receipt.length + 1) leafScratch = new Uint8Array(receipt.length * 2 + 1);
  leafScratch[0] = LEAF_PREFIX;
  leafScratch.set(receipt, 1);
  const out = new Uint8Array(32);
  hasher.hashInto(leafScratch.subarray(0, receipt.length + 1), out);
  return out;
}

/** The leaf hash of bytes that already start with the 0x00 prefix, into `out` (the export's hot path). */
export function prefixedLeafHashInto(prefixed: Uint8Array, out: Uint8Array): void {
  hasher.hashInto(prefixed, out);
}

export const EMPTY_ROOT: Uint8Array = (() => {
  const out = new Uint8Array(32);
  hasher.hashInto(new Uint8Array(0), out);
  return out;
})();

interface Subtree {
  hash: Uint8Array;
  size: number;
}

/** Streaming root of the RFC 6962 tree over the leaves added so far; allocates nothing per leaf. */
export class MerkleBuilder {
  /** Roots of the perfect subtrees held, 32 bytes each, left to right (at most 53 for 2^53 leaves). */
  readonly #hashes = new Uint8Array(32 * 64);
  readonly #sizes: number[] = [];
  #count = 0;

  get count(): number {
    return this.#count;
  }

  /** Adds a leaf hash (copied). */
  add(leaf: Uint8Array): void {
    const hashes = this.#hashes;
    const sizes = this.#sizes;
    let depth = sizes.length;
    copy32(leaf, 0, hashes, 32 * depth);
    let size = 1;
    while (depth > 0 && sizes[depth - 1] === size) {
      nodeHashInto(hashes, 32 * (depth - 1), hashes, 32 * depth, hashes, 32 * (depth - 1));
      sizes.pop();
      depth--;
      size *= 2;
    }
    sizes.push(size);
    this.#count++;
  }

  /** The perfect subtrees held now, left to right (the binary decomposition of `count`). */
  subtrees(): Subtree[] {
    return this.#sizes.map((size, i) => ({ hash: this.#hashes.slice(32 * i, 32 * i + 32), size }));
  }

  root(): Uint8Array {
    const depth = this.#sizes.length;
    if (depth === 0) return EMPTY_ROOT.slice();
    const hash = this.#hashes.slice(32 * (depth - 1), 32 * depth);
    for (let i = depth - 2; i >= 0; i--) nodeHashInto(this.#hashes, 32 * i, hash, 0, hash, 0);
    return hash;
  }
}

/** Largest power of two strictly below n (n ≥ 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * The leaf ranges [start, end) whose roots form PATH(m, D[n]) (RFC 6962 §2.1.1), in
 * proof order: nearest sibling first.
 */
export function auditPathRanges(index: number, size: number): [number, number][] {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) {
    throw new RangeError(`leaf ${index} is not in a tree of ${size}`);
  }
  const ranges: [number, number][] = [];
  let start = 0;
  let end = size;
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (index - start < k) {
      ranges.push([start + k, end]);
      end = start + k;
    } else {
      ranges.push([start, start + k]);
      start += k;
    }
  }
  return ranges.reverse();
}

/**
 * The root an inclusion proof leads to (RFC 9162 §2.1.3.2), or null when the proof does
 * not fit the tree size (wrong length, index out of range).
 */
export function rootFromInclusionProof(
  index: number,
  size: number,
  leaf: Uint8Array,
  path: readonly Uint8Array[],
): Uint8Array | null {
  if (index < 0 || index >= size) return null;
  let fn = index;
  let sn = size - 1;
  let hash = leaf;
  for (const sibling of path) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      hash = nodeHash(sibling, hash);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      hash = nodeHash(hash, sibling);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? hash : null;
}

export interface InclusionProof {
  index: number;
  size: number;
  leaf: Uint8Array;
  /** Sibling roots, nearest first. */
  path: Uint8Array[];
}

/**
 * Builds the inclusion proof of one leaf while the leaves stream past, so the verifier
 * needs no second pass: made when the target leaf arrives (its index is known then),
 * it reads the left siblings off the root builder's stack, then roots the ranges to
 * its right one after another as the remaining leaves are added.
 */
export class ProofBuilder {
  readonly #index: number;
  readonly #size: number;
  readonly #leaf: Uint8Array;
  readonly #ranges: [number, number][];
  readonly #known = new Map<number, Uint8Array>();
  #position: number;
  #current: MerkleBuilder | null = null;
  #currentRange = -1;

  /** `before`: the root builder holding the leaves before this one. */
  constructor(size: number, leaf: Uint8Array, before: MerkleBuilder) {
    this.#index = before.count;
    this.#size = size;
    this.#leaf = leaf;
    this.#ranges = auditPathRanges(this.#index, size);
    this.#position = this.#index + 1;
    let start = 0;
    for (const subtree of before.subtrees()) {
      const end = start + subtree.size;
      const i = this.#ranges.findIndex(([s, e]) => s === start && e === end);
      if (i < 0) throw new Error(`subtree [${start}, ${end}) is not on the proof path`);
      this.#known.set(i, subtree.hash);
      start = end;
    }
  }

  /** Every leaf after the target, in order. */
  add(leaf: Uint8Array): void {
    const position = this.#position++;
    if (position >= this.#size) return;
    if (!this.#current) {
      this.#currentRange = this.#ranges.findIndex(([start]) => start === position);
      if (this.#currentRange < 0) throw new Error(`no proof range starts at leaf ${position}`);
      this.#current = new MerkleBuilder();
    }
    this.#current.add(leaf);
    const [start, end] = this.#ranges[this.#currentRange] as [number, number];
    if (start + this.#current.count === end) {
      this.#known.set(this.#currentRange, this.#current.root());
      this.#current = null;
    }
  }

  /** The proof once all `size` leaves went past; null when fewer or more came. */
  finish(): InclusionProof | null {
    if (this.#position !== this.#size) return null;
    const path = this.#ranges.map((_, i) => this.#known.get(i));
    if (path.some((hash) => hash === undefined)) return null;
    return { index: this.#index, size: this.#size, leaf: this.#leaf, path: path as Uint8Array[] };
  }
}
