/**
 * @module The isolate's memory of the Redis values admission reads (window counters,
 * cached balances, cached API key entries), so a warm invocation asks Redis nothing.
 *
 * - Values are used while at most `freshMs` old (`LEDGER_FRESH_MS`); older ones are
 *   missing, and the caller reads Redis (and `remember`s what it read).
 * - Counted calls accumulate in the isolate (`add`) and reach Redis with the next sync as
 *   one `INCRBY` per counter, whose answer (the window's total, other isolates' calls
 *   included) becomes the counter's new base.
 * - Every use schedules one sync per `syncMs` (`LEDGER_SYNC_MS`) per isolate: a single
 *   pipeline that pushes the counts and re-reads every value used since the last sync. So
 *   while calls flow, what the isolate knows is about one sync old (a deleted key's
 *   tombstone or a drained balance is seen within `syncMs` plus a round trip), and never
 *   older than `freshMs`, even when Redis is down (values then age out and callers fall
 *   back to their cold path).
 *
 * The ledger knows Redis keys only; what they mean belongs to src/services/admission.ts.
 * Workers constraint: the sync runs from a timer set by one request and every request
 * that used the ledger meanwhile holds it in `waitUntil`, so the isolate stays up for it.
 */
import type { Redis } from "../lib/redis.ts";

export const LEDGER_FRESH_MS = 1_000;
export const LEDGER_SYNC_MS = 100;
/** Beyond this many entries the ledger starts over (a burst of distinct callers). */
const MAX_ENTRIES = 20_000;

interface Counter {
  /** The window's total in Redis, as of `at` (this isolate's synced calls included). */
  base: number;
  /** Calls counted here and not yet added in Redis. */
  pending: number;
  /** Calls a sync in flight is adding (still counted here until Redis answers). */
  syncing: number;
  at: number;
  ttlSeconds: number;
}

/** The window's total as this isolate knows it: Redis's, plus its own calls not yet in it. */
const total = (counter: Counter) => counter.base + counter.syncing + counter.pending;

interface Value {
  value: unknown;
  at: number;
}

export class AdmissionLedger {
  readonly #counters = new Map<string, Counter>();
  readonly #values = new Map<string, Value>();
  /** Values used since the last sync, re-read by the next one. */
  readonly #used = new Set<string>();
  #sync: Promise<void> | null = null;

  constructor(
    readonly freshMs = LEDGER_FRESH_MS,
    readonly syncMs = LEDGER_SYNC_MS,
  ) {}

  /** The value of `key` if fresh (marking it for re-reading), else undefined. */
  value<T>(key: string, nowMs: number): T | undefined {
    const hit = this.#values.get(key);
    if (!hit || nowMs - hit.at > this.freshMs) return undefined;
    this.#used.add(key);
    return hit.value as T;
  }

  /** Stores what Redis answered for `key` (null: nothing there, so nothing to remember). */
  remember(key: string, value: unknown, nowMs: number): void {
    if (value === null || value === undefined) {
      this.#values.delete(key);
      return;
    }
    this.#roomFor(this.#values);
    this.#values.set(key, { value, at: nowMs });
  }

  /** Drops a value at once (the isolate that changed it in Redis). */
  forget(key: string): void {
    this.#values.delete(key);
  }

  /** The counter's total if its base is fresh, else undefined. */
  freshCount(key: string, nowMs: number): number | undefined {
    const counter = this.#counters.get(key);
    return counter && nowMs - counter.at <= this.freshMs ? total(counter) : undefined;
  }

  /** The counter's total as known here, however old (undefined when never read or counted). */
  count(key: string): number | undefined {
    const counter = this.#counters.get(key);
    return counter ? total(counter) : undefined;
  }

  /** A total read from Redis (counts only grow within a window, so the larger base wins). */
  learnCount(key: string, total: number, ttlSeconds: number, nowMs: number): void {
    const counter = this.#counters.get(key);
    if (counter) {
      counter.base = Math.max(counter.base, total);
      counter.at = nowMs;
      return;
    }
    this.#roomFor(this.#counters);
    this.#counters.set(key, { base: total, pending: 0, syncing: 0, at: nowMs, ttlSeconds });
  }

  /** Counts one call; it reaches Redis with the next sync. */
  add(key: string, ttlSeconds: number): void {
    const counter = this.#counters.get(key);
    if (counter) {
      counter.pending++;
      return;
    }
    // Never read (Redis was down): counted, but not fresh, so the next call reads Redis.
    this.#roomFor(this.#counters);
    this.#counters.set(key, { base: 0, pending: 1, syncing: 0, at: 0, ttlSeconds });
  }

  /** Joins (or starts) the next sync; `defer` keeps the request alive until it is done. */
  schedule(redis: Redis, defer: (work: Promise<unknown>) => void): void {
    this.#sync ??= new Promise((resolve) => setTimeout(resolve, this.syncMs)).then(() => {
      this.#sync = null;
      return this.sync(redis);
    });
    defer(this.#sync);
  }

  /** Pushes pending counts and re-reads the values in use, in one pipeline. */
  async sync(redis: Redis): Promise<void> {
    const now = Date.now();
    const counters = [...this.#counters].filter(([, counter]) => counter.pending > 0);
    const taken = counters.map(([, counter]) => counter.pending);
    // Moved, not dropped: until Redis answers they still count here (a read of Redis meanwhile
    // may not include them yet; counting them twice only errs on the strict side).
    for (const [, counter] of counters) {
      counter.syncing += counter.pending;
      counter.pending = 0;
    }
    const keys = [...this.#used];
    this.#used.clear();
    if (counters.length > 0 || keys.length > 0) {
      const pipe = redis.pipeline();
      counters.forEach(([key, counter], i) => {
        pipe.incrby(key, taken[i] as number).expire(key, counter.ttlSeconds);
      });
      for (const key of keys) pipe.get(key);
      try {
        const results = await pipe.exec<unknown[]>();
        counters.forEach(([, counter], i) => {
          counter.syncing -= taken[i] as number;
          counter.base = Math.max(counter.base, Number(results[2 * i]));
          counter.at = now;
        });
        keys.forEach((key, i) => {
          this.remember(key, results[2 * counters.length + i], now);
        });
      } catch {
        // Redis is unreachable: the counts wait for the next sync; the values age out.
        counters.forEach(([, counter], i) => {
          counter.syncing -= taken[i] as number;
          counter.pending += taken[i] as number;
        });
      }
    }
    this.#sweep(now);
  }

  /** Drops what is too old to be used and has nothing to push. */
  #sweep(nowMs: number): void {
    for (const [key, counter] of this.#counters) {
      if (counter.pending + counter.syncing === 0 && nowMs - counter.at > this.freshMs) this.#counters.delete(key);
    }
    for (const [key, value] of this.#values) {
      if (nowMs - value.at > this.freshMs) this.#values.delete(key);
    }
  }

  #roomFor(map: Map<string, unknown>): void {
    if (map.size >= MAX_ENTRIES) {
      if (map === this.#counters) {
        for (const [key, counter] of this.#counters) {
          if (counter.pending + counter.syncing === 0) this.#counters.delete(key);
        }
      } else map.clear();
    }
  }
}

/** The isolate's ledger (module state lives as long as the isolate). */
export const isolateLedger = new AdmissionLedger();
