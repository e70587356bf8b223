/**
 * The real chain implementation (src/chain/rpc.ts, `@polkadot/api` over HTTP) against
 * the fake subtensor node: what it decodes, what it signs, and what the node accepts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RpcChain } from "../../src/chain/rpc.ts";
import { ChainError } from "../../src/chain/types.ts";
import { FIXTURE_HEAD, fixtureChain, KEYS, seed, VALIDATOR_SEED } from "../support/chain-fixture.ts";
import { type FakeSubtensor, startFakeSubtensor } from "../support/fake-subtensor.ts";

const NETUID = 64;
let node: FakeSubtensor;
let chain: RpcChain;

beforeAll(async () => {
  node = await startFakeSubtensor(fixtureChain(NETUID));
  chain = await RpcChain.connect({ url: node.url, validatorSeed: VALIDATOR_SEED });
});

afterAll(async () => {
  await chain?.close();
  await node?.close();
});

describe("RpcChain against a subtensor node", () => {
  it("decodes every neuron of the subnet from NeuronInfoRuntimeApi_get_neurons_lite", async () => {
    const neurons = await chain.getNeurons(NETUID);
    expect(neurons.map((n) => n.uid)).toEqual([0, 1, 2, 3]);
    const [validator, served, bare, ipv6] = neurons;
    expect(validator).toMatchObject({
      netuid: NETUID,
      hotkey: KEYS.validator,
      coldkey: KEYS.validatorColdkey,
      stakeRao: 1_500_000_000_000n,
      validatorTrust: 1,
      validatorPermit: true,
      lastUpdate: 880,
      axon: null,
    });
    expect(served).toMatchObject({
      hotkey: KEYS.minerA,
      coldkey: KEYS.coldkey,
      active: true,
      stakeRao: 18_000_000_000_123_456_789n,
      trust: 1,
      lastUpdate: 12,
      axon: { ip: "192.168.10.1", port: 8091, ipType: 4, protocol: 4, version: 7, block: 500 },
    });
    expect(served?.incentive).toBeCloseTo(32_768 / 65_535, 12);
    expect(bare).toMatchObject({ hotkey: KEYS.minerB, active: false, stakeRao: 0n, incentive: 0, axon: null });
    expect(ipv6?.axon).toMatchObject({ ip: "2001:db8::1", port: 443, ipType: 6 });
    expect(ipv6?.incentive).toBe(1 / 65_535);
  });

  it("answers an empty list for a subnet that does not exist", async () => {
    expect(await chain.getNeurons(4321)).toEqual([]);
  });

  it("reports the finalised head, not the best block", async () => {
    const head = await chain.getFinalizedHead();
    expect(head).toEqual({ number: FIXTURE_HEAD - 2, hash: node.blockHash(FIXTURE_HEAD - 2) });
  });

  it("decodes the Balances.Transfer events of a finalised block", async () => {
    const block = await chain.getTransfers(995);
    expect(block).toEqual({
      number: 995,
      hash: node.blockHash(995),
      transfers: [
        {
          blockNumber: 995,
          blockHash: node.blockHash(995),
          extrinsicIndex: 1,
          eventIndex: 2,
          from: KEYS.minerA,
          to: KEYS.coldkey,
          amountRao: 2_500_000_000n,
        },
        {
          blockNumber: 995,
          blockHash: node.blockHash(995),
          extrinsicIndex: 2,
          eventIndex: 6,
          from: KEYS.minerB,
          to: KEYS.validatorColdkey,
          amountRao: 18_446_744_073_709_551_615n,
        },
      ],
    });
    expect((await chain.getTransfers(994))?.transfers).toEqual([]);
  });

  it("does not report a block past the finalised head, even when the node has it", async () => {
    expect(await chain.getTransfers(FIXTURE_HEAD)).toBeNull();
    expect(await chain.getTransfers(FIXTURE_HEAD - 1)).toBeNull();
  });

  it("reads the validator's uid, last update and the weights rate limit", async () => {
    const state = await chain.getValidatorState(NETUID);
    expect(state).toEqual({
      netuid: NETUID,
      hotkey: KEYS.validator,
      uid: 0,
      lastUpdate: 880,
      currentBlock: FIXTURE_HEAD,
      weightsRateLimit: 100,
    });
    expect(await chain.getValidatorState(4321)).toMatchObject({ uid: null, lastUpdate: null, weightsRateLimit: 100 });
  });

  it("signs set_weights with the validator hotkey; the node decodes and verifies it", async () => {
    expect(chain.validatorHotkey).toBe(KEYS.validator);
    const request = { netuid: NETUID, uids: [1, 3], weights: [65_535, 1234], versionKey: 69_420 };
    const submission = await chain.setWeights(request);
    expect(node.rejected).toEqual([]);
    expect(node.submitted).toHaveLength(1);
    const [accepted] = node.submitted;
    expect(accepted).toMatchObject({
      hash: submission.extrinsicHash,
      signer: KEYS.validator,
      nonce: 0,
      tip: 0n,
      metadataHashMode: 0,
      call: { pallet: 7, call: 0, netuid: NETUID, dests: [1, 3], weights: [65_535, 1234], versionKey: 69_420n },
    });
    expect(accepted?.era?.period).toBe(64);
    expect(submission).toMatchObject({ ...request, mode: "rpc", hotkey: KEYS.validator, block: FIXTURE_HEAD });
    // The node moved the validator's last update; the next submission uses the next nonce.
    expect((await chain.getValidatorState(NETUID)).lastUpdate).toBe(FIXTURE_HEAD);
    await chain.setWeights({ ...request, weights: [1, 2] });
    expect(node.submitted.map((s) => s.nonce)).toEqual([0, 1]);
  });

  it("is held to the node's checks: a tampered or replayed extrinsic is refused", async () => {
    const raw = node.submitted.at(-1)?.raw ?? "";
    const rpc = async (xt: string) => {
      const res = await fetch(node.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "author_submitExtrinsic", params: [xt] }),
      });
      return ((await res.json()) as { error?: { code: number; data: string } }).error;
    };
    // The last byte is the top byte of version_key: the signature no longer covers the call.
    const tampered = `${raw.slice(0, -2)}${raw.endsWith("ff") ? "00" : "ff"}`;
    expect(await rpc(tampered)).toMatchObject({ code: 1010, data: "bad signature" });
    expect(await rpc(raw)).toMatchObject({ code: 1010, data: "nonce is stale" });
    // Another key signs for itself: accepted under its own address, never as the validator.
    const other = await RpcChain.connect({ url: node.url, validatorSeed: seed(9) });
    try {
      await other.setWeights({ netuid: NETUID, uids: [1], weights: [1], versionKey: 1 });
      expect(node.submitted.at(-1)?.signer).toBe(other.validatorHotkey);
      expect(other.validatorHotkey).not.toBe(KEYS.validator);
    } finally {
      await other.close();
    }
  });

  it("refuses weight vectors the chain would reject, before signing", async () => {
    const before = node.submitted.length;
    await expect(chain.setWeights({ netuid: NETUID, uids: [1, 1], weights: [1, 2], versionKey: 0 })).rejects.toThrow(
      ChainError,
    );
    await expect(chain.setWeights({ netuid: NETUID, uids: [1], weights: [70_000], versionKey: 0 })).rejects.toThrow(
      /u16/,
    );
    await expect(chain.setWeights({ netuid: NETUID, uids: [1, 2], weights: [1], versionKey: 0 })).rejects.toThrow(
      /2 uids but 1 weights/,
    );
    expect(node.submitted).toHaveLength(before);
  });

  it("cannot sign without a validator seed", async () => {
    const readOnly = await RpcChain.connect({ url: node.url });
    try {
      expect(readOnly.validatorHotkey).toBeNull();
      await expect(readOnly.setWeights({ netuid: NETUID, uids: [], weights: [], versionKey: 0 })).rejects.toThrow(
        /VALIDATOR_HOTKEY_SEED/,
      );
    } finally {
      await readOnly.close();
    }
  });
});
