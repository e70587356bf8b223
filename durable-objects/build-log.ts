/**
 * @module One build's log: a Durable Object per image (named by image id) that the
 * builder's log batches go to and every waiting client reads from (`POST /images/` with
 * `wait=True`, `GET /images/{id}/logs`), with no polling anywhere.
 *
 * Why an object and not Redis streams: a build can run for an hour; a request that polled
 * Redis every second would spend ~3600 subrequests (Workers allow 1000–10000) and add a
 * second of latency per line. Here a waiting request costs one subrequest: the object
 * answers it with a stream it writes every line into as the line arrives.
 *
 * - Lines are kept in the object's SQLite storage as ready-made SSE frames
 *   (`data: {"log_type":…,"log":…}\n\n`), so a late reader gets the backlog then the live
 *   tail, in order. Bounded: lines are cut at `MAX_LINE_CHARS`, and after `MAX_LINES`
 *   lines or `MAX_LOG_BYTES` one truncation notice is written and further lines dropped.
 * - The builder posts batches with the attempt number and the sequence number of their
 *   first line; a retried batch is accepted once (lines already stored are skipped), a
 *   batch of an older attempt is ignored, and a gap is refused so the builder resends.
 * - `finish` writes the final line, stores the whole stream (ending `DONE\n`) in R2,
 *   ends every reader's stream with `DONE\n`, and empties the storage: afterwards readers
 *   are answered from R2.
 */
import { DurableObject } from "cloudflare:workers";

export const MAX_LINE_CHARS = 8192;
export const MAX_LINES = 50_000;
export const MAX_LOG_BYTES = 16 * 1024 * 1024;

export type LogType = "stdout" | "stderr";
export interface LogLine {
  log_type: LogType;
  log: string;
}

export type AppendOutcome =
  | { ok: true; next_seq: number }
  | { ok: false; reason: "stale_attempt" | "gap" | "finished"; next_seq: number };

const DONE = "DONE\n";
const encoder = new TextEncoder();

/** One line as the CLI reads it. */
export function sseFrame(line: LogLine): string {
  const log = line.log.length > MAX_LINE_CHARS ? `${line.log.slice(0, MAX_LINE_CHARS)}…` : line.log;
  return `data: ${JSON.stringify({ log_type: line.log_type, log })}\n\n`;
}

/** A whole log as the CLI reads it: its lines, then the end marker. */
export function sseLog(lines: LogLine[]): string {
  return lines.map(sseFrame).join("") + DONE;
}

export class BuildLog extends DurableObject<{ BUCKET: R2Bucket }> {
  readonly #readers = new Set<WritableStreamDefaultWriter<Uint8Array>>();

  constructor(ctx: DurableObjectState, env: { BUCKET: R2Bucket }) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS lines (idx INTEGER PRIMARY KEY, frame TEXT NOT NULL)");
    sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
  }

  #get(key: string): string | null {
    const rows = this.ctx.storage.sql.exec("SELECT value FROM meta WHERE key = ?", key).toArray();
    return rows[0] ? String(rows[0].value) : null;
  }

  #set(key: string, value: string | number): void {
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, String(value));
  }

  #num(key: string): number {
    return Number(this.#get(key) ?? 0);
  }

  #write(frame: string): void {
    const bytes = encoder.encode(frame);
    for (const reader of this.#readers) {
      reader.write(bytes).catch(() => this.#readers.delete(reader));
    }
  }

  /** Stores and sends one line, within the bounds (the final line always gets in). */
  #push(line: LogLine, final = false): void {
    if (this.#get("truncated") && !final) return;
    const frame = sseFrame(line);
    const count = this.#num("count");
    const bytes = this.#num("bytes");
    if (!final && (count >= MAX_LINES || bytes + frame.length > MAX_LOG_BYTES)) {
      this.#set("truncated", 1);
      const notice = sseFrame({
        log_type: "stderr",
        log: `[log truncated after ${count} lines: further lines dropped]`,
      });
      this.ctx.storage.sql.exec("INSERT INTO lines (frame) VALUES (?)", notice);
      this.#write(notice);
      return;
    }
    this.ctx.storage.sql.exec("INSERT INTO lines (frame) VALUES (?)", frame);
    this.#set("count", count + 1);
    this.#set("bytes", bytes + frame.length);
    this.#write(frame);
  }

  /** A new image with this id (an upload, possibly after a deletion): forget any earlier build. */
  async reset(): Promise<void> {
    for (const reader of this.#readers) reader.close().catch(() => {});
    this.#readers.clear();
    this.ctx.storage.sql.exec("DELETE FROM lines");
    this.ctx.storage.sql.exec("DELETE FROM meta");
  }

  /** A builder claimed the build (attempt `attempt`): later batches carry that number. */
  async begin(attempt: number, note: string): Promise<void> {
    if (this.#get("finished_key")) return;
    this.#set("attempt", attempt);
    this.#set("next_seq", 0);
    this.#push({ log_type: "stdout", log: note });
  }

  /** A line from the platform itself (a re-queue, a reaped build). */
  async note(line: LogLine): Promise<void> {
    if (!this.#get("finished_key")) this.#push(line);
  }

  /** Appends a batch of the builder's lines, in order, exactly once. */
  async append(attempt: number, seq: number, lines: LogLine[]): Promise<AppendOutcome> {
    const next = this.#num("next_seq");
    if (this.#get("finished_key")) return { ok: false, reason: "finished", next_seq: next };
    if (attempt !== this.#num("attempt")) return { ok: false, reason: "stale_attempt", next_seq: next };
    if (seq > next) return { ok: false, reason: "gap", next_seq: next };
    const fresh = lines.slice(next - seq);
    for (const line of fresh) this.#push(line);
    this.#set("next_seq", next + fresh.length);
    return { ok: true, next_seq: next + fresh.length };
  }

  /**
   * Ends the log: the final line, the whole stream stored in R2 at `key`, `DONE` to every
   * reader. Idempotent (a repeat finds it finished and changes nothing).
   */
  async finish(key: string, final: LogLine): Promise<void> {
    if (this.#get("finished_key")) return;
    this.#push(final, true);
    const frames = this.ctx.storage.sql.exec("SELECT frame FROM lines ORDER BY idx").toArray();
    const text = frames.map((row) => String(row.frame)).join("") + DONE;
    await this.env.BUCKET.put(key, text, { httpMetadata: { contentType: "text/event-stream; charset=utf-8" } });
    this.#write(DONE);
    for (const reader of this.#readers) reader.close().catch(() => {});
    this.#readers.clear();
    this.ctx.storage.sql.exec("DELETE FROM lines");
    this.ctx.storage.sql.exec("DELETE FROM meta");
    this.#set("finished_key", key);
  }

  /** The log as a stream: what is stored so far, then every line as it arrives, then `DONE`. */
  override async fetch(): Promise<Response> {
    const headers = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store" };
    const finished = this.#get("finished_key");
    if (finished) {
      const object = await this.env.BUCKET.get(finished);
      return new Response(object ? object.body : DONE, { headers });
    }
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const writer = writable.getWriter();
    const backlog = this.ctx.storage.sql.exec("SELECT frame FROM lines ORDER BY idx").toArray();
    if (backlog.length > 0) {
      writer.write(encoder.encode(backlog.map((row) => String(row.frame)).join(""))).catch(() => {});
    }
    this.#readers.add(writer);
    return new Response(readable, { headers });
  }
}
