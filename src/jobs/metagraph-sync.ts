/**
 * @module Cron job: mirror the subnet metagraph (`NETUID`) into `metagraph_nodes`.
 */
import { openChain } from "../chain/index.ts";
import type { CronJob } from "../cron.ts";
import { syncMetagraph } from "../services/metagraph.ts";

export const metagraphSyncJob: CronJob = {
  name: "metagraph-sync",
  // Well inside the minute between two runs; the next run retries whatever failed.
  timeoutMs: 40_000,
  async run({ config, deps, signal }) {
    const chain = await openChain(config);
    try {
      const result = await syncMetagraph({ db: deps.db, chain, now: () => deps.now(), signal }, config.NETUID);
      return { ...result, chain: chain.mode };
    } finally {
      await chain.close();
    }
  },
};
