/**
 * @module Cron job (minute 1 of every hour, as upstream): export the hour that just ended,
 * and catch up on recent hours that have no export yet (src/services/exports.ts).
 *
 * Attempts are written when they end, through the Metering Durable Objects, which flush to
 * Postgres about once a second. An export is immutable, so the job first flushes every
 * shard: an attempt that ended in the hour but still sat in a shard (a slow or failing
 * flush) is in Postgres before its hour is read. When that flush fails, nothing is exported
 * this run; the next run catches up.
 */
import { signerFromSeed } from "../chain/keys.ts";
import type { CronJob } from "../cron.ts";
import { withConnection } from "../db/client.ts";
import { isoSeconds } from "../exports/manifest.ts";
import type { Sha256Factory } from "../exports/sha256.ts";
import { exportHour, pendingHours } from "../services/exports.ts";
import { flushAllMetering } from "../services/metering-client.ts";

/** workerd's native incremental SHA-256 (`crypto.DigestStream`), several times noble's speed. */
const digestStreamSha256: Sha256Factory = () => {
  const stream = new crypto.DigestStream("SHA-256");
  const writer = stream.getWriter();
  return {
    update: (bytes) => writer.write(bytes),
    async digest() {
      await writer.close();
      return new Uint8Array(await stream.digest);
    },
  };
};

export const exportInvocationsJob: CronJob = {
  name: "export-invocations",
  // A million-row hour takes seconds; catching up several stays well inside this.
  timeoutMs: 10 * 60_000,
  async run({ config, deps, signal, scheduledTime }) {
    if (!config.VALIDATOR_HOTKEY_SEED) {
      throw new Error("VALIDATOR_HOTKEY_SEED is not configured: exports are signed with the validator hotkey");
    }
    const signer = signerFromSeed(config.VALIDATOR_HOTKEY_SEED);
    const flushed = await flushAllMetering(config);
    const done: string[] = [];
    for (const hour of await pendingHours(deps.db, scheduledTime)) {
      const outcome = await withConnection(deps.db, ({ db, client }) =>
        exportHour(
          { db, client, bucket: deps.bucket, signer, now: () => deps.now(), sha256: digestStreamSha256, signal },
          hour,
        ),
      );
      done.push(`${isoSeconds(hour)} ${outcome.status} ${outcome.manifest?.row_count ?? "-"} rows`);
    }
    return { flushed, hours: done };
  },
};
