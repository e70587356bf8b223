/**
 * @module The real chain: a subtensor node over HTTP JSON-RPC through `@polkadot/api`.
 *
 * Loaded lazily (src/chain/index.ts) so only the cron and the services that talk to the
 * chain pay for evaluating the library. Constraints from workerd that shape it:
 * - HTTP only (`HttpProvider`, one `fetch` per call): no socket outlives the invocation,
 *   and every call is one subrequest;
 * - `initWasm: false`: WASM compilation is forbidden in workerd, so the API must not wait
 *   for `cryptoWaitReady` (util-crypto falls back to its pure-JS sr25519/blake2/xxhash);
 * - `throwOnConnect`: over HTTP a failed start would otherwise never settle.
 *
 * Reads, and why this way (docs/protocols.md, "Chain"):
 * - neurons: one `state_call` of `NeuronInfoRuntimeApi_get_neurons_lite(netuid)` (the same
 *   snapshot every Bittensor SDK reads) instead of ~10 storage maps per uid;
 * - validator: `SubtensorModule.Uids(netuid, hotkey)`, `WeightsSetRateLimit(netuid)` and
 *   `get_neuron_lite(netuid, uid).last_update` (newer runtimes keep the last update in
 *   their rate-limiting pallet, which the runtime API hides);
 * - transfers: `System.Events` at the block's hash, `Balances.Transfer` records only.
 */
import { ApiPromise, HttpProvider, Keyring } from "@polkadot/api";
import type { KeyringPair } from "@polkadot/keyring/types";
import type { Bool, Compact, Option, Struct, u8, u16, u32, u64, u128, Vec } from "@polkadot/types";
import type { AccountId32, EventRecord } from "@polkadot/types/interfaces";
import type { ITuple } from "@polkadot/types/types";
import { hexToU8a, u8aConcat, u8aToHex } from "@polkadot/util";
import { encodeAddress } from "@polkadot/util-crypto";
import { checkWeightsRequest, toAxon, u16ToUnit } from "./convert.ts";
import {
  type BlockRef,
  type BlockTransfers,
  type Chain,
  ChainError,
  type Neuron,
  type Transfer,
  type ValidatorState,
  type WeightSubmission,
  type WeightsRequest,
} from "./types.ts";

/** Bittensor addresses use the generic Substrate prefix. */
export const SS58_PREFIX = 42;
/** Blocks a signed `set_weights` stays valid for (a power of two). */
const WEIGHTS_ERA_BLOCKS = 64;

/**
 * The runtime API's return types (pallets/subtensor/src/rpc_info/neuron_info.rs and the
 * `AxonInfo`/`PrometheusInfo` structs in the pallet). Metadata v14 carries no runtime
 * API types, so they are declared here; newtypes (`NetUid`, `AlphaCurrency`) encode as
 * their inner integers.
 */
const RUNTIME_API_TYPES = {
  ChainAxonInfo: {
    block: "u64",
    version: "u32",
    ip: "u128",
    port: "u16",
    ipType: "u8",
    protocol: "u8",
    placeholder1: "u8",
    placeholder2: "u8",
  },
  ChainPrometheusInfo: { block: "u64", version: "u32", ip: "u128", port: "u16", ipType: "u8" },
  ChainNeuronInfoLite: {
    hotkey: "AccountId32",
    coldkey: "AccountId32",
    uid: "Compact<u16>",
    netuid: "Compact<u16>",
    active: "bool",
    axonInfo: "ChainAxonInfo",
    prometheusInfo: "ChainPrometheusInfo",
    stake: "Vec<(AccountId32, Compact<u64>)>",
    rank: "Compact<u16>",
    emission: "Compact<u64>",
    incentive: "Compact<u16>",
    consensus: "Compact<u16>",
    trust: "Compact<u16>",
    validatorTrust: "Compact<u16>",
    dividends: "Compact<u16>",
    lastUpdate: "Compact<u64>",
    validatorPermit: "bool",
    pruningScore: "Compact<u16>",
  },
};

interface AxonInfoCodec extends Struct {
  block: u64;
  version: u32;
  ip: u128;
  port: u16;
  ipType: u8;
  protocol: u8;
}

interface NeuronInfoLiteCodec extends Struct {
  hotkey: AccountId32;
  coldkey: AccountId32;
  uid: Compact<u16>;
  netuid: Compact<u16>;
  active: Bool;
  axonInfo: AxonInfoCodec;
  stake: Vec<ITuple<[AccountId32, Compact<u64>]>>;
  incentive: Compact<u16>;
  trust: Compact<u16>;
  validatorTrust: Compact<u16>;
  lastUpdate: Compact<u64>;
  validatorPermit: Bool;
}

export interface RpcChainOptions {
  /** http(s) JSON-RPC endpoint of a subtensor node. */
  url: string;
  /** 32-byte hex seed of the validator hotkey (sr25519); absent: read-only. */
  validatorSeed?: string;
}

function toNeuron(codec: NeuronInfoLiteCodec): Neuron {
  const axon = codec.axonInfo;
  let stakeRao = 0n;
  for (const [, amount] of codec.stake) stakeRao += amount.unwrap().toBigInt();
  return {
    netuid: codec.netuid.unwrap().toNumber(),
    uid: codec.uid.unwrap().toNumber(),
    hotkey: encodeAddress(codec.hotkey, SS58_PREFIX),
    coldkey: encodeAddress(codec.coldkey, SS58_PREFIX),
    active: codec.active.isTrue,
    stakeRao,
    incentive: u16ToUnit(codec.incentive.unwrap().toNumber()),
    trust: u16ToUnit(codec.trust.unwrap().toNumber()),
    validatorTrust: u16ToUnit(codec.validatorTrust.unwrap().toNumber()),
    validatorPermit: codec.validatorPermit.isTrue,
    lastUpdate: Number(codec.lastUpdate.unwrap().toBigInt()),
    axon: toAxon({
      block: Number(axon.block.toBigInt()),
      version: axon.version.toNumber(),
      ip: axon.ip.toBigInt(),
      port: axon.port.toNumber(),
      ipType: axon.ipType.toNumber(),
      protocol: axon.protocol.toNumber(),
    }),
  };
}

/** SCALE u16, little endian. */
function u16Le(value: number): Uint8Array {
  return new Uint8Array([value & 0xff, (value >> 8) & 0xff]);
}

export class RpcChain implements Chain {
  readonly mode = "rpc" as const;
  readonly validatorHotkey: string | null;
  readonly #api: ApiPromise;
  readonly #pair: KeyringPair | null;
  #finalized: BlockRef | null = null;

  private constructor(api: ApiPromise, pair: KeyringPair | null) {
    this.#api = api;
    this.#pair = pair;
    this.validatorHotkey = pair ? encodeAddress(pair.publicKey, SS58_PREFIX) : null;
  }

  static async connect(options: RpcChainOptions): Promise<RpcChain> {
    // Capacity 0: no result cache, so every read is fresh and nothing lingers.
    const provider = new HttpProvider(options.url, {}, 0);
    const api = await ApiPromise.create({
      provider,
      initWasm: false,
      noInitWarn: true,
      throwOnConnect: true,
      types: RUNTIME_API_TYPES,
    });
    const pair = options.validatorSeed
      ? new Keyring({ type: "sr25519", ss58Format: SS58_PREFIX }).addFromSeed(hexToU8a(options.validatorSeed))
      : null;
    return new RpcChain(api, pair);
  }

  /** `state_call` of a runtime API, decoded as `type`; checks the layout used every byte. */
  async #runtimeCall<T extends { encodedLength: number }>(method: string, args: Uint8Array, type: string): Promise<T> {
    const bytes = await this.#api.rpc.state.call(method, u8aToHex(args));
    const decoded = this.#api.registry.createType(type, bytes) as unknown as T;
    if (decoded.encodedLength !== bytes.length) {
      throw new ChainError(
        `${method}: decoded ${decoded.encodedLength} of ${bytes.length} bytes; the runtime's layout changed`,
      );
    }
    return decoded;
  }

  async getNeurons(netuid: number): Promise<Neuron[]> {
    const neurons = await this.#runtimeCall<Vec<NeuronInfoLiteCodec>>(
      "NeuronInfoRuntimeApi_get_neurons_lite",
      u16Le(netuid),
      "Vec<ChainNeuronInfoLite>",
    );
    return neurons.map(toNeuron).sort((a, b) => a.uid - b.uid);
  }

  async getFinalizedHead(): Promise<BlockRef> {
    const hash = await this.#api.rpc.chain.getFinalizedHead();
    const header = await this.#api.rpc.chain.getHeader(hash);
    this.#finalized = { number: header.number.toNumber(), hash: hash.toHex() };
    return this.#finalized;
  }

  async getTransfers(blockNumber: number): Promise<BlockTransfers | null> {
    if (!this.#finalized || blockNumber > this.#finalized.number) await this.getFinalizedHead();
    if (!this.#finalized || blockNumber > this.#finalized.number) return null;
    // Below the finalised head the canonical hash of a number never changes.
    const hash = await this.#api.rpc.chain.getBlockHash(blockNumber);
    if (hash.isEmpty) throw new ChainError(`block ${blockNumber} is unknown to the node`);
    const at = await this.#api.at(hash);
    const events = at.query.system?.events;
    if (!events) throw new ChainError("the runtime metadata has no System.Events");
    const records = (await events()) as unknown as Vec<EventRecord>;
    const blockHash = hash.toHex();
    const transfers: Transfer[] = [];
    records.forEach((record, eventIndex) => {
      const { event, phase } = record;
      if (event.section !== "balances" || event.method !== "Transfer") return;
      const [from, to, amount] = event.data;
      if (!from || !to || !amount) throw new ChainError("Balances.Transfer without from/to/amount");
      transfers.push({
        blockNumber,
        blockHash,
        extrinsicIndex: phase.isApplyExtrinsic ? phase.asApplyExtrinsic.toNumber() : null,
        eventIndex,
        from: encodeAddress(from.toU8a(), SS58_PREFIX),
        to: encodeAddress(to.toU8a(), SS58_PREFIX),
        amountRao: BigInt(amount.toString()),
      });
    });
    return { number: blockNumber, hash: blockHash, transfers };
  }

  async getValidatorState(netuid: number): Promise<ValidatorState> {
    const hotkey = this.#requireHotkey();
    const module = this.#api.query.subtensorModule;
    const uids = module?.uids;
    if (!uids) throw new ChainError("the runtime metadata has no SubtensorModule.Uids");
    const rateLimit = module.weightsSetRateLimit;
    const [header, uid, limit] = await Promise.all([
      this.#api.rpc.chain.getHeader(),
      uids(netuid, hotkey) as Promise<Option<u16>>,
      rateLimit ? (rateLimit(netuid) as Promise<u64>) : Promise.resolve(null),
    ]);
    let lastUpdate: number | null = null;
    if (uid.isSome) {
      const neuron = await this.#runtimeCall<Option<NeuronInfoLiteCodec>>(
        "NeuronInfoRuntimeApi_get_neuron_lite",
        u8aConcat(u16Le(netuid), u16Le(uid.unwrap().toNumber())),
        "Option<ChainNeuronInfoLite>",
      );
      lastUpdate = neuron.isSome ? Number(neuron.unwrap().lastUpdate.unwrap().toBigInt()) : null;
    }
    return {
      netuid,
      hotkey,
      uid: uid.isSome ? uid.unwrap().toNumber() : null,
      lastUpdate,
      currentBlock: header.number.toNumber(),
      weightsRateLimit: limit === null ? null : Number(limit.toBigInt()),
    };
  }

  async setWeights(request: WeightsRequest): Promise<WeightSubmission> {
    const hotkey = this.#requireHotkey();
    checkWeightsRequest(request);
    const pair = this.#pair;
    const setWeights = this.#api.tx.subtensorModule?.setWeights;
    if (!pair || !setWeights) throw new ChainError("the runtime metadata has no SubtensorModule.set_weights");
    const { netuid, uids, weights, versionKey } = request;
    const extrinsic = setWeights(netuid, uids, weights, versionKey);
    const header = await this.#api.rpc.chain.getHeader();
    // nonce -1: `system_accountNextIndex`, which counts transactions still in the pool.
    const hash = await extrinsic.signAndSend(pair, { nonce: -1, era: WEIGHTS_ERA_BLOCKS });
    return { ...request, mode: "rpc", hotkey, extrinsicHash: hash.toHex(), block: header.number.toNumber() };
  }

  async close(): Promise<void> {
    await this.#api.disconnect();
  }

  #requireHotkey(): string {
    if (!this.validatorHotkey) throw new ChainError("no validator hotkey: VALIDATOR_HOTKEY_SEED is not configured");
    return this.validatorHotkey;
  }
}
