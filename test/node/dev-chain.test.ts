/**
 * The dev chain (infra/dev/dev-chain.ts) and the `file` chain that reads it
 * (src/chain/file.ts): how a simulated miner registers, what the Worker sees, and that
 * weights are recorded, never submitted.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevChain, startDevChain } from "../../infra/dev/dev-chain.ts";
import { DEV_METAGRAPH_SEED, DEV_VALIDATOR_SEED } from "../../infra/dev/services.ts";
import { FileChain } from "../../src/chain/file.ts";
import { hotkeyFromSeed } from "../../src/chain/keys.ts";
import { KEYS } from "../support/chain-fixture.ts";

let dir: string;
let file: string;
let dev: DevChain;
let chain: FileChain;
const changes: string[] = [];

const post = async (pathname: string, body: unknown) => {
  const res = await fetch(`${dev.url}${pathname}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "dev-chain-"));
  file = path.join(dir, "metagraph.json");
  copyFileSync(DEV_METAGRAPH_SEED, file);
  dev = await startDevChain({
    file,
    onChange: async () => {
      changes.push("synced");
      return "ok";
    },
  });
  chain = new FileChain({ url: dev.url, validatorSeed: DEV_VALIDATOR_SEED });
});

afterAll(async () => {
  await dev?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the dev chain and the file chain", () => {
  it("serves the seed metagraph, whose uid 0 is the dev validator", async () => {
    const neurons = await chain.getNeurons(64);
    expect(neurons.map((n) => n.uid)).toEqual([0, 1, 2]);
    expect(neurons[0]?.hotkey).toBe(hotkeyFromSeed(DEV_VALIDATOR_SEED));
    expect(chain.validatorHotkey).toBe(neurons[0]?.hotkey);
    expect(neurons[0]?.stakeRao).toBe(10_000_000_000_000n);
    expect(neurons[1]?.axon).toEqual({ ip: "127.0.0.1", port: 8091, ipType: 4, protocol: 4, version: 0, block: 0 });
    expect(neurons[2]).toMatchObject({ axon: null, stakeRao: 0n, incentive: 0 });
  });

  it("registers a simulated miner's hotkey with POST /neurons, on the next free uid, and syncs at once", async () => {
    const res = await post("/neurons", { netuid: 64, hotkey: KEYS.minerA, coldkey: KEYS.coldkey });
    expect(res).toMatchObject({ status: 200, body: { netuid: 64, uid: 3, hotkey: KEYS.minerA, sync: "ok" } });
    expect(changes).toEqual(["synced"]);
    expect((await chain.getNeurons(64)).map((n) => n.hotkey)).toContain(KEYS.minerA);
    // Written to the file, so it survives a restart of npm start.
    expect(readFileSync(file, "utf8")).toContain(KEYS.minerA);
    // Re-registering keeps the hotkey unique; a taken uid is refused.
    expect((await post("/neurons", { netuid: 64, hotkey: KEYS.minerA, coldkey: KEYS.coldkey, uid: 3 })).status).toBe(
      200,
    );
    expect((await post("/neurons", { netuid: 64, hotkey: KEYS.minerB, coldkey: KEYS.coldkey, uid: 0 })).status).toBe(
      409,
    );
    expect((await post("/neurons", { netuid: 64, hotkey: "not-ss58", coldkey: KEYS.coldkey })).status).toBe(422);
  });

  it("deregisters with DELETE, and picks up a hand edit of the file", async () => {
    const res = await fetch(`${dev.url}/neurons/64/${KEYS.minerA}`, { method: "DELETE" });
    expect(res.status).toBe(200);
    expect((await chain.getNeurons(64)).map((n) => n.hotkey)).not.toContain(KEYS.minerA);
    const doc = JSON.parse(readFileSync(file, "utf8"));
    doc.subnets["7"] = [{ uid: 5, hotkey: KEYS.minerC, coldkey: KEYS.coldkey, stake: 2.5 }];
    writeFileSync(file, JSON.stringify(doc));
    expect(await chain.getNeurons(7)).toMatchObject([
      { netuid: 7, uid: 5, hotkey: KEYS.minerC, stakeRao: 2_500_000_000n },
    ]);
    writeFileSync(file, "{ not json");
    await expect(chain.getNeurons(7)).rejects.toThrow(/dev chain/);
    writeFileSync(file, JSON.stringify(doc));
  });

  it("records weights instead of submitting them, and counts them as the validator's last update", async () => {
    const submission = await chain.setWeights({ netuid: 64, uids: [1, 2], weights: [100, 200], versionKey: 69_420 });
    expect(submission).toMatchObject({ mode: "file", extrinsicHash: null, hotkey: chain.validatorHotkey });
    const recorded = (await (await fetch(`${dev.url}/weights`)).json()) as unknown[];
    expect(recorded).toEqual([
      {
        netuid: 64,
        hotkey: chain.validatorHotkey,
        uids: [1, 2],
        weights: [100, 200],
        version_key: 69_420,
        block: submission.block,
      },
    ]);
    const state = await chain.getValidatorState(64);
    expect(state).toMatchObject({ uid: 0, lastUpdate: submission.block, weightsRateLimit: 5 });
    expect(state.currentBlock).toBeGreaterThanOrEqual(submission.block);
  });

  it("puts transfers in a new final block; later blocks do not exist yet", async () => {
    const block = await post("/transfers", [
      { from: KEYS.minerA, to: KEYS.coldkey, amount_rao: "18446744073709551615" },
    ]);
    const number = Number(block.body.number);
    expect((await chain.getFinalizedHead()).number).toBeGreaterThanOrEqual(number);
    expect(await chain.getTransfers(number)).toMatchObject({
      number,
      transfers: [{ from: KEYS.minerA, to: KEYS.coldkey, amountRao: 18_446_744_073_709_551_615n, extrinsicIndex: 1 }],
    });
    expect(await chain.getTransfers(number + 5)).toBeNull();
  });
});
