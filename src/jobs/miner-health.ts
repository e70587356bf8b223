/**
 * @module Cron job (every minute): the miner plane's housekeeping. Pings every routable
 * instance (`/_ping` under its session key; failures count towards removal, a success
 * resets the count), and fails verifications that outlived their limit (a Verifier that
 * died), so no node stays `verifying` and no instance stays half-verified forever.
 */
import type { CronJob } from "../cron.ts";
import { probeInstances, sweepStuckInstances } from "../services/instances.ts";
import { sweepStuckNodes, VERIFICATION_LIMIT_MS } from "../services/nodes.ts";

export const minerHealthJob: CronJob = {
  name: "miner-health",
  timeoutMs: 50_000,
  async run({ config, deps, log }) {
    const plane = { db: deps.db, config, log, now: () => deps.now() };
    const stuckNodes = await sweepStuckNodes(plane);
    const stuckInstances = await sweepStuckInstances(plane, VERIFICATION_LIMIT_MS);
    const probes = await probeInstances(plane);
    return { stuck_nodes: stuckNodes, stuck_instances: stuckInstances, ...probes };
  },
};
