/**
 * @module `npm run sim:instance -- <chute_id> [--model <name>]`: a simulated chute instance
 * (test/support/sim-instance.ts: the whole instance protocol, with test cords and
 * OpenAI-shaped vLLM cords) on a free loopback port, written into the database at
 * DATABASE_URL as an active, verified instance of the chute with a fresh session key, the
 * way the miner plane leaves an instance after verification. A development shortcut for
 * trying the gateway without a miner; Ctrl-C stops it and removes the instance row.
 */
import { eq } from "drizzle-orm";
import { instances } from "../../src/db/schema.ts";
import { seedInstance } from "../../test/support/gateway-fixture.ts";
import { withDatabase } from "./database.ts";

const url = process.env.DATABASE_URL;
const args = process.argv.slice(2);
const chuteId = args.find((a) => !a.startsWith("--"));
const modelAt = args.indexOf("--model");
const model = modelAt >= 0 ? args[modelAt + 1] : undefined;
if (!url || !chuteId) {
  console.error("usage: DATABASE_URL=postgres://… npm run sim:instance -- <chute_id> [--model <name>]");
  process.exit(2);
}
const sim = await seedInstance(url, chuteId, { model });
console.log(`sim instance ${sim.instanceId} of chute ${chuteId} serving at ${sim.url} (Ctrl-C to stop)`);
const stop = async () => {
  await withDatabase(url, (db) => db.delete(instances).where(eq(instances.instanceId, sim.instanceId ?? "")));
  await sim.close();
  process.exit(0);
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
