/**
 * @module The build's log on its way to the API: lines are queued as buildah prints them
 * and sent in order, in batches (at most `MAX_BATCH_LINES` lines, at most every
 * `FLUSH_MS`), one request at a time, each batch numbered by its first line so a retried
 * batch is stored once. The queue is bounded: while the API cannot be reached, lines past
 * `MAX_QUEUED` are counted and replaced by one notice, so a chatty build cannot exhaust
 * the builder's memory.
 */
import { PermanentError, withRetries } from "../../src/lib/service-client.ts";
import type { LogLine } from "./api.ts";

export const MAX_BATCH_LINES = 200;
export const MAX_QUEUED = 20_000;
export const FLUSH_MS = 300;

export type SendBatch = (seq: number, lines: LogLine[]) => Promise<void>;

export class LogStream {
  readonly #send: SendBatch;
  readonly #queue: LogLine[] = [];
  #seq = 0;
  #dropped = 0;
  #sending: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  /** Set when the API refused a batch for good (the build was lost): nothing more is sent. */
  #refused: Error | null = null;

  constructor(send: SendBatch) {
    this.#send = send;
  }

  get refused(): Error | null {
    return this.#refused;
  }

  push(line: LogLine): void {
    if (this.#refused) return;
    if (this.#queue.length >= MAX_QUEUED) {
      this.#dropped++;
      return;
    }
    if (this.#dropped > 0) {
      this.#queue.push({ log_type: "stderr", log: `[${this.#dropped} log lines dropped: the API was unreachable]` });
      this.#dropped = 0;
    }
    this.#queue.push(line);
    if (this.#queue.length >= MAX_BATCH_LINES) this.#kick();
    else this.#timer ??= setTimeout(() => this.#kick(), FLUSH_MS);
  }

  #kick(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#sending ??= this.#drain().finally(() => {
      this.#sending = null;
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0 && !this.#refused) {
      const batch = this.#queue.slice(0, MAX_BATCH_LINES);
      try {
        await withRetries(() => this.#send(this.#seq, batch), { until: Date.now() + 60_000, maxDelayMs: 5_000 });
      } catch (error) {
        if (error instanceof PermanentError) {
          this.#refused = error;
          return;
        }
        // Still unreachable after a minute: keep the lines and try again on the next kick.
        return;
      }
      this.#queue.splice(0, batch.length);
      this.#seq += batch.length;
    }
  }

  /** Sends everything queued (waiting at most `timeoutMs`). */
  async flush(timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.#queue.length > 0 && !this.#refused && Date.now() < until) {
      this.#kick();
      await this.#sending;
      if (this.#queue.length > 0) await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}
