/**
 * @module Safe extraction of a build context (a zip archive as `chutes build` uploads it)
 * into a fresh directory. Written against the zip format itself (central directory, stored
 * and deflated entries) rather than a library, so every limit is enforced before a byte is
 * written:
 * - every entry path stays inside the directory (no absolute paths, no `..`, no
 *   backslashes, no drive letters), and no path is written twice;
 * - symbolic links are refused (the SDK's zip follows links, so a context never needs one);
 *   so are encrypted entries and zip64 archives;
 * - at most `maxEntries` entries and `maxBytes` uncompressed bytes in all, checked against
 *   the declared sizes first and against what inflating really produces (each entry is
 *   inflated with its declared size as the output limit, then its CRC-32 is checked).
 * Any violation throws `ContextError` with a sentence for the developer.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { crc32, inflateRawSync } from "node:zlib";

export class ContextError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ContextError";
  }
}

export interface ExtractLimits {
  maxEntries: number;
  maxBytes: number;
}

interface Entry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
  mode: number;
}

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

const invalid = (why: string) => new ContextError(`the build context is not a valid zip archive: ${why}`);

function findEnd(zip: Buffer): number {
  const from = Math.max(0, zip.length - 22 - 0xffff);
  for (let i = zip.length - 22; i >= from; i--) if (zip.readUInt32LE(i) === EOCD) return i;
  throw invalid("no end-of-central-directory record");
}

function readEntries(zip: Buffer, limits: ExtractLimits): Entry[] {
  const end = findEnd(zip);
  const count = zip.readUInt16LE(end + 10);
  const size = zip.readUInt32LE(end + 12);
  const offset = zip.readUInt32LE(end + 16);
  if (count === 0xffff || offset === 0xffffffff) throw new ContextError("zip64 build contexts are not supported.");
  if (count > limits.maxEntries) {
    throw new ContextError(`the build context has ${count} entries; at most ${limits.maxEntries} are allowed.`);
  }
  if (offset + size > end) throw invalid("the central directory lies outside the archive");
  const entries: Entry[] = [];
  let at = offset;
  for (let i = 0; i < count; i++) {
    if (at + 46 > end || zip.readUInt32LE(at) !== CENTRAL) throw invalid("a central directory entry is damaged");
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const madeBy = zip.readUInt16LE(at + 4) >> 8;
    const external = zip.readUInt32LE(at + 38);
    entries.push({
      flags: zip.readUInt16LE(at + 8),
      method: zip.readUInt16LE(at + 10),
      crc: zip.readUInt32LE(at + 16),
      compressedSize: zip.readUInt32LE(at + 20),
      size: zip.readUInt32LE(at + 24),
      localOffset: zip.readUInt32LE(at + 42),
      // Unix permissions live in the high half of the external attributes (made by Unix = 3).
      mode: madeBy === 3 ? external >>> 16 : 0,
      name: zip.toString("utf8", at + 46, at + 46 + nameLength),
    });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** The entry's path inside `root`, or a `ContextError` if it would land anywhere else. */
function safePath(root: string, name: string): string {
  if (
    name.length === 0 ||
    name.includes("\\") ||
    name.includes("\0") ||
    /^[A-Za-z]:/.test(name) ||
    name.startsWith("/")
  ) {
    throw new ContextError(`the build context has an entry with an unsafe path: ${JSON.stringify(name)}.`);
  }
  const parts = name.split("/").filter((part) => part !== "" && part !== ".");
  if (parts.includes("..")) {
    throw new ContextError(`the build context has an entry that escapes its directory: ${JSON.stringify(name)}.`);
  }
  const target = path.resolve(root, ...parts);
  if (target !== root && !target.startsWith(`${root}${path.sep}`)) {
    throw new ContextError(`the build context has an entry that escapes its directory: ${JSON.stringify(name)}.`);
  }
  return target;
}

/** Extracts `zip` into the empty directory `root`; returns the number of files written. */
export function extractContext(zip: Buffer, root: string, limits: ExtractLimits): number {
  const dir = path.resolve(root);
  const entries = readEntries(zip, limits);
  const declared = entries.reduce((sum, entry) => sum + entry.size, 0);
  if (declared > limits.maxBytes) {
    throw new ContextError(`the build context unpacks to ${declared} bytes; at most ${limits.maxBytes} are allowed.`);
  }
  const seen = new Set<string>();
  let written = 0;
  let total = 0;
  for (const entry of entries) {
    const target = safePath(dir, entry.name);
    if (seen.has(target)) throw new ContextError(`the build context has ${JSON.stringify(entry.name)} twice.`);
    seen.add(target);
    if ((entry.mode & S_IFMT) === S_IFLNK) {
      throw new ContextError(
        `the build context has a symbolic link (${JSON.stringify(entry.name)}); add the file itself.`,
      );
    }
    if (entry.name.endsWith("/")) {
      mkdirSync(target, { recursive: true });
      continue;
    }
    if (entry.flags & 1)
      throw new ContextError(`the build context has an encrypted entry (${JSON.stringify(entry.name)}).`);
    const local = entry.localOffset;
    if (local + 30 > zip.length || zip.readUInt32LE(local) !== LOCAL)
      throw invalid(`the entry ${entry.name} is damaged`);
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(start, start + entry.compressedSize);
    if (raw.length !== entry.compressedSize) throw invalid(`the entry ${entry.name} is truncated`);
    let data: Buffer;
    if (entry.method === 0) data = raw;
    else if (entry.method === 8) {
      try {
        data = entry.size === 0 ? Buffer.alloc(0) : inflateRawSync(raw, { maxOutputLength: entry.size });
      } catch (error) {
        throw invalid(`the entry ${entry.name} does not inflate to its declared size (${(error as Error).message})`);
      }
    } else
      throw new ContextError(
        `the build context uses compression method ${entry.method}; only stored and deflated entries are supported.`,
      );
    if (data.length !== entry.size || crc32(data) !== entry.crc) {
      throw invalid(`the entry ${entry.name} does not match its declared size and checksum`);
    }
    total += data.length;
    if (total > limits.maxBytes) {
      throw new ContextError(`the build context unpacks to more than ${limits.maxBytes} bytes.`);
    }
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, data, { flag: "wx", mode: entry.mode & 0o111 ? 0o755 : 0o644 });
    written++;
  }
  return written;
}
