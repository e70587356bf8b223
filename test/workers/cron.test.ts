/**
 * The Worker's `scheduled` handler inside workerd: the cron table runs the metagraph
 * sync against the dev chain (`file`) and against the fake subtensor node (`rpc`, which
 * exercises `@polkadot/api` in workerd), and a failing job fails the invocation without
 * touching the table. Environments are overridden per test (own netuid, own chain).
 */
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { afterAll, describe, expect, inject, it } from "vitest";
import { openChain } from "../../src/chain/index.ts";
import { openDatabase } from "../../src/db/client.ts";
import { metagraphNodes } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import worker from "../../src/index.ts";
import { KEYS, VALIDATOR_SEED, WORKERS_RPC_NETUID } from "../support/chain-fixture.ts";
import { randomHotkey, registerDevNeuron } from "./chain-helpers.ts";

const handle = openDatabase(configFor(env));
afterAll(() => handle.close());

const subnetRows = (netuid: number) =>
  handle.db.select().from(metagraphNodes).where(eq(metagraphNodes.netuid, netuid)).orderBy(metagraphNodes.nodeId);

async function runCron(overrides: Record<string, string>, cron = "* * * * *") {
  const controller = createScheduledController({ cron, scheduledTime: new Date() });
  const ctx = createExecutionContext();
  try {
    await worker.scheduled(controller, { ...env, ...overrides }, ctx);
  } finally {
    await waitOnExecutionContext(ctx);
  }
}

const rpcEnv = { CHAIN_MODE: "rpc", SUBTENSOR_URL: inject("fakeSubtensorUrl"), VALIDATOR_HOTKEY_SEED: VALIDATOR_SEED };

describe("cron", () => {
  it("syncs the dev chain's metagraph every minute in file mode", async () => {
    const netuid = 40_000 + Math.floor(Math.random() * 10_000);
    const hotkey = randomHotkey();
    await registerDevNeuron(netuid, { hotkey, coldkey: randomHotkey(), uid: 0, stake: 2 });
    await runCron({ NETUID: String(netuid) });
    expect(await subnetRows(netuid)).toMatchObject([{ hotkey, nodeId: 0, stake: 2 }]);
  });

  it("syncs from a subtensor node over JSON-RPC inside workerd", async () => {
    await runCron({ ...rpcEnv, NETUID: String(WORKERS_RPC_NETUID) });
    const synced = await subnetRows(WORKERS_RPC_NETUID);
    expect(synced.map((row) => [row.nodeId, row.hotkey])).toEqual([
      [0, KEYS.validator],
      [1, KEYS.minerA],
      [2, KEYS.minerB],
      [3, KEYS.minerC],
    ]);
    expect(synced[1]).toMatchObject({ ip: "192.168.10.1", port: 8091 });
    expect(synced[1]?.stake).toBeCloseTo(18_000_000_000.123_455, 4);
    expect(synced[3]).toMatchObject({ ip: "2001:db8::1", ipType: 6 });
  });

  it("signs set_weights inside workerd (pure-JS sr25519, no WASM) and the node verifies it", async () => {
    const chain = await openChain(configFor({ ...env, ...rpcEnv }));
    try {
      const submission = await chain.setWeights({
        netuid: WORKERS_RPC_NETUID,
        uids: [1],
        weights: [65_535],
        versionKey: 7,
      });
      const accepted = (await (await fetch(`${inject("fakeSubtensorUrl")}/submitted`)).json()) as {
        hash: string;
        signer: string;
        call: { netuid: number; dests: number[]; weights: number[]; versionKey: string };
      }[];
      expect(accepted.at(-1)).toMatchObject({
        hash: submission.extrinsicHash,
        signer: KEYS.validator,
        call: { netuid: WORKERS_RPC_NETUID, dests: [1], weights: [65_535], versionKey: "7" },
      });
    } finally {
      await chain.close();
    }
  });

  it("fails the invocation when a job fails, and leaves the table as it was", async () => {
    const netuid = 50_000 + Math.floor(Math.random() * 10_000);
    await expect(
      runCron({ CHAIN_MODE: "rpc", SUBTENSOR_URL: "http://127.0.0.1:9", NETUID: String(netuid) }),
    ).rejects.toThrow(/metagraph-sync, payments failed/);
    expect(await subnetRows(netuid)).toEqual([]);
  });

  it("runs nothing for a schedule without jobs", async () => {
    await expect(runCron({}, "0 0 1 1 *")).resolves.toBeUndefined();
  });
});
