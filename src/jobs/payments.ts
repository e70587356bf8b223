/**
 * @module Cron job (every minute): credit transfers to users' payment addresses from the
 * finalised blocks since the last run (src/services/payments.ts), at the current TAO
 * price (src/services/fmv.ts).
 */
import { openChain } from "../chain/index.ts";
import type { CronJob } from "../cron.ts";
import { currentPrice } from "../services/fmv.ts";
import { processPayments } from "../services/payments.ts";

export const paymentsJob: CronJob = {
  name: "payments",
  // Inside the minute; the next run resumes from the cursor.
  timeoutMs: 50_000,
  async run({ config, deps, signal }) {
    const chain = await openChain(config);
    try {
      const run = await processPayments({
        db: deps.db,
        chain,
        price: () => currentPrice(deps),
        config,
        monitorId: `payments:${chain.mode}`,
        signal,
      });
      return { ...run, chain: chain.mode };
    } finally {
      await chain.close();
    }
  },
};
