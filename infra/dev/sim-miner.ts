/**
 * @module `npm run sim:miner`: one simulated miner (test/support/sim-miner.ts) against a
 * running `npm start`, walking the whole miner flow and printing each step: socket, GPU
 * registration and proof, instance announce, activation, key exchange and ping, with the
 * events that arrive over the socket. The miner's hotkey, a chute for it to run and its
 * metagraph entry are written to the platform's database first (the dev chain has no
 * miners of its own), so it needs that database's URL.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/chutes npm start      # one terminal
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/chutes npm run sim:miner -- --gpus 2
 *
 * Options: `--api http://127.0.0.1:8787` (default), `--gpus N` (1), `--chute ID-OR-SLUG` (run
 * an instance of a chute you deployed, with as many GPUs as its node selector asks, instead
 * of a seeded one; its selector must admit H100 SXM, the GPU the simulated miner reports),
 * `--keep` (stay connected and print events until Ctrl-C; otherwise delete the instance and
 * GPUs and exit). The instance answers invocations with the simulated instance's cords
 * (docs/protocols.md): a JSON echo, SSE streams and an OpenAI-compatible chat completion.
 */
import { parseArgs } from "node:util";
import { eq, or } from "drizzle-orm";
import { hotkeyFromSeed } from "../../src/chain/keys.ts";
import { chutes } from "../../src/db/schema.ts";
import { randomHotkey } from "../../test/support/chutes-cli.ts";
import { SimMiner, seedMiner, seedMinerAndChute } from "../../test/support/sim-miner.ts";
import { withDatabase } from "./database.ts";
import { DEV_VALIDATOR_SEED } from "./services.ts";

const { values } = parseArgs({
  options: {
    api: { type: "string", default: "http://127.0.0.1:8787" },
    gpus: { type: "string", default: "1" },
    chute: { type: "string" },
    keep: { type: "boolean", default: false },
    "database-url": { type: "string", default: process.env.DATABASE_URL ?? "" },
  },
});
const databaseUrl = values["database-url"] ?? "";
if (!databaseUrl) {
  console.error("sim:miner needs the platform's database: set DATABASE_URL (the one npm start uses) or --database-url");
  process.exit(2);
}
const log = (line: string) => console.log(`[sim:miner] ${line}`);

/** The chute to run: the one named by `--chute` (its GPU count from its selector), or a seeded one. */
async function chuteToRun(minerHotkey: string): Promise<{ chuteId: string; gpus: number; model?: string }> {
  if (!values.chute) {
    const gpus = Number(values.gpus);
    const { chuteId } = await withDatabase(databaseUrl, (db) => seedMinerAndChute(db, minerHotkey, { gpus }));
    return { chuteId, gpus };
  }
  const ref = values.chute;
  return withDatabase(databaseUrl, async (db) => {
    const [chute] = await db
      .select({ chuteId: chutes.chuteId, name: chutes.name, nodeSelector: chutes.nodeSelector })
      .from(chutes)
      .where(or(eq(chutes.chuteId, ref), eq(chutes.slug, ref)));
    if (!chute) throw new Error(`no chute ${ref} in this database`);
    await seedMiner(db, minerHotkey);
    // A vLLM chute is named after its model: the instance reports that name in completions.
    return { chuteId: chute.chuteId, gpus: chute.nodeSelector.gpu_count, model: chute.name };
  });
}

const hotkey = randomHotkey();
const { chuteId, gpus, model } = await chuteToRun(hotkey.ss58);
const miner = new SimMiner({
  baseUrl: values.api ?? "http://127.0.0.1:8787",
  hotkey,
  validatorHotkey: process.env.VALIDATOR_HOTKEY ?? hotkeyFromSeed(DEV_VALIDATOR_SEED),
  gpus,
  log,
});

try {
  log(`miner ${hotkey.ss58} registered (manual metagraph entry); chute ${chuteId} needs ${gpus} GPU(s)`);
  await miner.startVerificationServer();
  log(`verification server on 127.0.0.1:${miner.verificationPort}`);
  const hello = await miner.connect();
  log(`socket connected: ${JSON.stringify(hello)}`);
  const started = Date.now();
  const { task_id } = await miner.registerNodes();
  log(`POST /nodes/ → 202, task ${task_id}`);
  const status = await miner.awaitVerification(task_id);
  log(`verification: ${JSON.stringify(status)} in ${Date.now() - started} ms`);
  if (status.status !== "verified") throw new Error("the GPUs were not verified");
  const instance = await miner.startInstance({ model });
  const announced = await miner.announce(chuteId, instance.host, instance.port);
  log(`POST /instances/${chuteId}/ → ${announced.status} ${announced.text}`);
  const instanceId = announced.json<{ instance_id: string }>().instance_id;
  const { res, patches } = await miner.activateUntilSettled(chuteId, instanceId);
  log(`PATCH ×${patches} → ${res.status} ${res.text}`);
  await miner.waitEvent("instance_verified", { instance_id: instanceId });
  for (const frame of miner.frames) log(`event: ${JSON.stringify(frame)}`);
  if (values.keep) {
    log("connected; printing new events until Ctrl-C");
    let seen = miner.frames.length;
    const printer = setInterval(() => {
      for (const frame of miner.frames.slice(seen)) log(`event: ${JSON.stringify(frame)}`);
      seen = miner.frames.length;
    }, 500);
    await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
    clearInterval(printer);
  } else {
    await miner.call("DELETE", `/instances/${chuteId}/${instanceId}`, { purpose: "instances" });
    for (const device of miner.devices) await miner.call("DELETE", `/nodes/${device.uuid}`, { purpose: "nodes" });
    log("instance and GPUs deleted");
  }
} catch (error) {
  console.error(`[sim:miner] failed: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  await miner.close();
}
