/**
 * @module Writing one object of unknown length to R2 with flat memory, never visible
 * half-written: bytes fill fixed-size parts that go up as a multipart upload (R2 wants
 * every part but the last the same size, at least 5 MiB), and the object appears only
 * when the upload completes. An object that fits in one part is one conditional put
 * instead. Two part buffers: one uploading while the other fills.
 *
 * The file's SHA-256 is computed part by part on the way (before a part is handed to
 * R2, so the buffer is not reused while either reads it).
 *
 * `ExportBucket` is the slice of the R2 binding this needs, so Node code (the benchmark)
 * can hand in another implementation.
 */
import { toHex } from "../lib/bytes.ts";
import type { Sha256Factory, Sha256Stream } from "./sha256.ts";

export interface UploadedPart {
  partNumber: number;
  etag: string;
}

export interface ExportUpload {
  uploadPart(partNumber: number, value: Uint8Array): Promise<UploadedPart>;
  complete(parts: UploadedPart[]): Promise<unknown>;
  abort(): Promise<void>;
}

export interface StoredObject {
  size: number;
  body: ReadableStream<Uint8Array>;
  text(): Promise<string>;
}

export interface PutOptions {
  onlyIf?: { etagDoesNotMatch: string };
  httpMetadata?: { contentType: string };
}

export interface ExportBucket {
  head(key: string): Promise<{ size: number } | null>;
  get(key: string): Promise<StoredObject | null>;
  /** null when `onlyIf` failed (the key exists). */
  put(key: string, value: Uint8Array | string, options?: PutOptions): Promise<unknown | null>;
  createMultipartUpload(key: string, options?: { httpMetadata?: { contentType: string } }): Promise<ExportUpload>;
}

/** R2's smallest part but the last, and the part size exports use. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
export const EXPORT_PART_BYTES = 8 * 1024 * 1024;

/** Put only if nothing is stored under the key yet. */
export const IF_ABSENT = { etagDoesNotMatch: "*" } as const;

export class ObjectExistsError extends Error {
  constructor(key: string) {
    super(`${key} already exists; exports are never overwritten`);
    this.name = "ObjectExistsError";
  }
}

export interface WrittenObject {
  byteLength: number;
  sha256: string;
}

export class ObjectWriter {
  readonly #bucket: ExportBucket;
  readonly #key: string;
  readonly #partBytes: number;
  readonly #contentType: string;
  readonly #hash: Sha256Stream;
  #buffer: Uint8Array;
  #free: Uint8Array | null = null;
  #length = 0;
  #total = 0;
  #upload: ExportUpload | null = null;
  readonly #parts: UploadedPart[] = [];
  #inflight: { done: Promise<void>; buffer: Uint8Array } | null = null;

  constructor(
    bucket: ExportBucket,
    key: string,
    options: { partBytes: number; contentType: string; sha256: Sha256Factory },
  ) {
    this.#bucket = bucket;
    this.#key = key;
    this.#partBytes = options.partBytes;
    this.#contentType = options.contentType;
    this.#hash = options.sha256();
    this.#buffer = new Uint8Array(options.partBytes);
  }

  /**
   * Copies `bytes` in. Returns a promise only when a part filled up and went out (then
   * await it before the next write); otherwise nothing, so the per-record path stays
   * synchronous.
   */
  write(bytes: Uint8Array): Promise<void> | undefined {
    let offset = 0;
    while (offset < bytes.length) {
      const n = Math.min(bytes.length - offset, this.#partBytes - this.#length);
      this.#buffer.set(bytes.subarray(offset, offset + n), this.#length);
      this.#length += n;
      this.#total += n;
      offset += n;
      if (this.#length === this.#partBytes) {
        const rest = bytes.subarray(offset);
        return this.#sendPart().then(() => this.write(rest));
      }
    }
    return undefined;
  }

  async #settle(): Promise<void> {
    const inflight = this.#inflight;
    if (!inflight) return;
    this.#inflight = null;
    await inflight.done;
    this.#free = inflight.buffer;
  }

  async #sendPart(): Promise<void> {
    const full = this.#buffer.subarray(0, this.#length);
    await this.#hash.update(full);
    await this.#settle();
    this.#upload ??= await this.#bucket.createMultipartUpload(this.#key, {
      httpMetadata: { contentType: this.#contentType },
    });
    const upload = this.#upload;
    const partNumber = this.#parts.length + 1;
    const done = upload.uploadPart(partNumber, full).then((part) => {
      this.#parts[partNumber - 1] = part;
    });
    // Awaited by the next #settle; a failure meanwhile must not count as unhandled.
    done.catch(() => {});
    this.#inflight = { done, buffer: this.#buffer };
    this.#buffer = this.#free ?? new Uint8Array(this.#partBytes);
    this.#free = null;
    this.#length = 0;
  }

  /** Makes the object visible under its key; fails if something is already there. */
  async finish(): Promise<WrittenObject> {
    if (!this.#upload) {
      const body = this.#buffer.subarray(0, this.#length);
      await this.#hash.update(body);
      const stored = await this.#bucket.put(this.#key, body, {
        onlyIf: IF_ABSENT,
        httpMetadata: { contentType: this.#contentType },
      });
      if (stored === null) throw new ObjectExistsError(this.#key);
    } else {
      if (this.#length > 0) await this.#sendPart();
      await this.#settle();
      await this.#upload.complete(this.#parts);
    }
    return { byteLength: this.#total, sha256: toHex(await this.#hash.digest()) };
  }

  /** Drops an unfinished upload, so nothing of it ever appears. */
  async abort(): Promise<void> {
    await this.#settle().catch(() => {});
    await this.#upload?.abort();
  }
}
