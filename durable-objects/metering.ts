/**
 * @module Metering: a few Durable Objects (`metering-0` … `metering-{n-1}`; each isolate
 * draws one, so no single object is a bottleneck) that take finished invocation
 * attempts from the gateway, keep them durably in their storage at once, and flush them to
 * Postgres in batches from an alarm (src/services/metering.ts, one transaction per batch).
 *
 * The gateway calls `record` from `waitUntil` after the client has its last byte, so
 * billing never delays a response. A record is stored before `record` returns, so it
 * survives an eviction; a batch is forgotten only after its transaction committed, and a
 * batch flushed twice bills nothing twice (the insert is `ON CONFLICT DO NOTHING`). A
 * flush that fails is retried by the alarm with back-off, indefinitely: records are never
 * dropped, and the hourly export (minute 1) sees them as soon as Postgres is back.
 * After each committed batch the attempts' verdicts on their instances are applied
 * (`applyInstanceOutcomes`: consecutive failures, removal at INSTANCE_FAILURE_LIMIT), so
 * failure counting costs the invocation path nothing.
 */
import { DurableObject } from "cloudflare:workers";
import { openDatabase } from "../src/db/client.ts";
import { configFor } from "../src/env.ts";
import { createLogger, errorFields } from "../src/lib/log.ts";
import { openRedis } from "../src/lib/redis.ts";
import { cacheBalances } from "../src/services/admission.ts";
import { applyInstanceOutcomes } from "../src/services/instances.ts";
import { type FlushResult, flushInvocations, type InvocationRecord } from "../src/services/metering.ts";

const BATCH = 500;
const MAX_BACKOFF_MS = 30_000;
const PREFIX = "r:";

export class Metering extends DurableObject {
  #failures = 0;
  /** Whether an alarm is known to be set (saves a storage read per record). */
  #alarmSet = false;

  /** Stores finished attempts durably and schedules their flush. */
  async record(records: InvocationRecord[]): Promise<void> {
    const entries: Record<string, InvocationRecord> = {};
    for (const r of records.slice(0, 128)) entries[`${PREFIX}${r.startedAt}:${r.invocationId}`] = r;
    await this.ctx.storage.put(entries);
    if (records.length > 128) await this.record(records.slice(128));
    if (!this.#alarmSet && (await this.ctx.storage.getAlarm()) === null) {
      await this.ctx.storage.setAlarm(Date.now() + configFor(this.env as object).METERING_FLUSH_MS);
    }
    this.#alarmSet = true;
  }

  /** Records not yet in Postgres (tests and operators). */
  async pending(): Promise<number> {
    return (await this.ctx.storage.list({ prefix: PREFIX })).size;
  }

  /** Flushes everything now (tests and operators); the alarm does the same on its own. */
  async flushNow(): Promise<FlushResult> {
    const total: FlushResult = { inserted: 0, balances: [], bounties: [], instanceOutcomes: [] };
    for (;;) {
      const { result, more } = await this.#flushBatch();
      total.inserted += result.inserted;
      total.balances.push(...result.balances);
      total.bounties.push(...result.bounties);
      total.instanceOutcomes.push(...result.instanceOutcomes);
      if (!more) return total;
    }
  }

  override async alarm(): Promise<void> {
    // Records that arrive from here on need an alarm of their own unless this one re-arms.
    this.#alarmSet = false;
    try {
      const { more } = await this.#flushBatch();
      this.#failures = 0;
      if (more) {
        await this.ctx.storage.setAlarm(Date.now());
        this.#alarmSet = true;
      }
    } catch (error) {
      this.#failures++;
      const delay = Math.min(1000 * 2 ** Math.min(this.#failures, 5), MAX_BACKOFF_MS);
      console.error(`metering flush failed (retry in ${delay} ms): ${(error as Error).message}`);
      await this.ctx.storage.setAlarm(Date.now() + delay);
      this.#alarmSet = true;
    }
  }

  async #flushBatch(): Promise<{ result: FlushResult; more: boolean }> {
    const batch = await this.ctx.storage.list<InvocationRecord>({ prefix: PREFIX, limit: BATCH });
    if (batch.size === 0)
      return { result: { inserted: 0, balances: [], bounties: [], instanceOutcomes: [] }, more: false };
    const config = configFor(this.env as object);
    const handle = openDatabase(config);
    let result: FlushResult;
    try {
      result = await flushInvocations(handle.db, [...batch.values()]);
      // Storage takes at most 128 keys per delete.
      const keys = [...batch.keys()];
      for (let i = 0; i < keys.length; i += 128) await this.ctx.storage.delete(keys.slice(i, i + 128));
      // Failure counting (and removal at the limit) follows the committed attempts; its own
      // failure loses no record, so it is logged rather than retried with the batch.
      const deps = { db: handle.db, config, log: createLogger("info", { service: "metering" }), now: () => new Date() };
      await applyInstanceOutcomes(deps, result.instanceOutcomes).catch((error) =>
        deps.log.error("instance failure counting failed", errorFields(error)),
      );
    } finally {
      await handle.close().catch(() => {});
    }
    // The balance gate's cache learns the new balances (loss-tolerant: it expires anyway).
    await cacheBalances(openRedis(config), result.balances).catch(() => {});
    return { result, more: batch.size === BATCH };
  }
}
