/**
 * @module The gateway's side of metering: hands finished attempts to one of the
 * `Metering` Durable Objects (durable-objects/metering.ts), from `waitUntil`, after the
 * client has its answer. A shard that cannot be reached is retried, then another shard
 * is tried, so a record is dropped only if every shard refuses it several times.
 *
 * Records of concurrent requests in one isolate travel together: `queueAttempts` waits
 * `BATCH_MS` and sends everything queued by then in one RPC (each request's `waitUntil`
 * holds the batch it joined until the batch is stored), so a busy isolate makes one
 * metering call per batch, not one per request.
 */
import type { Metering } from "../../durable-objects/metering.ts";
import type { Config } from "../env.ts";
import type { InvocationRecord } from "./metering.ts";

export const meteringShard = (config: Pick<Config, "METERING">, shard: number): DurableObjectStub<Metering> =>
  config.METERING.get(config.METERING.idFromName(`metering-${shard}`)) as DurableObjectStub<Metering>;

/** How many `Metering` objects there are (`metering-0` … `metering-3`). */
export const METERING_SHARDS = 4;
export const BATCH_MS = 50;
let queued: InvocationRecord[] = [];
let sending: Promise<void> | null = null;

/** Queues attempts for the next batch; resolves once that batch is stored. */
export function queueAttempts(config: Pick<Config, "METERING">, records: InvocationRecord[]): Promise<void> {
  queued.push(...records);
  sending ??= new Promise((resolve) => setTimeout(resolve, BATCH_MS)).then(() => {
    const batch = queued;
    queued = [];
    sending = null;
    return recordAttempts(config, batch);
  });
  return sending;
}

/**
 * This isolate's shard, drawn once: isolates spread over the shards, while each isolate's
 * records land in one, so a shard's flush (one Postgres transaction a second) carries
 * whole batches instead of every shard flushing a sliver of every isolate's traffic.
 */
let isolateShard: number | undefined;

export async function recordAttempts(config: Pick<Config, "METERING">, records: InvocationRecord[]): Promise<void> {
  // Drawn on first use: random values are not available in a Worker's global scope.
  isolateShard ??= Math.floor(Math.random() * METERING_SHARDS);
  const first = isolateShard;
  let lastError: unknown;
  for (let i = 0; i < METERING_SHARDS * 2; i++) {
    try {
      await meteringShard(config, (first + i) % METERING_SHARDS).record(records);
      return;
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 50 * (i + 1)));
    }
  }
  console.error(
    JSON.stringify({
      level: "error",
      msg: "metering records could not be stored",
      invocation_ids: records.map((r) => r.invocationId),
      error: String(lastError),
      records,
    }),
  );
}

/** Flushes every shard now (tests, operators); returns the number of rows written. */
export async function flushAllMetering(config: Pick<Config, "METERING">): Promise<number> {
  let inserted = 0;
  for (let shard = 0; shard < METERING_SHARDS; shard++)
    inserted += (await meteringShard(config, shard).flushNow()).inserted;
  return inserted;
}
