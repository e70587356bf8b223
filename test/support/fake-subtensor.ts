/**
 * @module A local subtensor node for tests: a real HTTP JSON-RPC server that answers
 * everything `RpcChain` (src/chain/rpc.ts) and `@polkadot/api` call, from a seeded
 * metagraph and a seeded list of blocks with transfers.
 *
 * It encodes and decodes with its own SCALE code (test/support/scale.ts) and the
 * metadata of test/support/subtensor-metadata.ts, so a test passes only when the
 * library's encoding agrees with the runtime's layouts, not merely with itself. For
 * `author_submitExtrinsic` it does what a node's transaction pool does before accepting
 * a transaction: decode the v4 signed extrinsic, rebuild the signing payload from its
 * own chain state (spec and tx version, genesis, the era's birth block), verify the
 * sr25519 signature, check the nonce, and check the call is
 * `SubtensorModule.set_weights`; tests assert on what it decoded (`submitted`, or
 * `GET /submitted` from inside workerd).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { hexToU8a, stringToU8a, u8aEq, u8aToHex } from "@polkadot/util";
import { blake2AsU8a, decodeAddress, encodeAddress, sr25519Verify, xxhashAsU8a } from "@polkadot/util-crypto";
import type { FakeNeuron, FakeSubtensorOptions } from "./chain-fixture.ts";
import { bool, compact, concat, option, Reader, u8, u16, u32, u64, u128, vec } from "./scale.ts";
import { buildSubtensorMetadata } from "./subtensor-metadata.ts";

export const SPEC_VERSION = 301;
export const TX_VERSION = 1;
const SS58 = 42;

export interface SubmittedExtrinsic {
  hash: string;
  /** The extrinsic as submitted (hex). */
  raw: string;
  signer: string;
  nonce: number;
  tip: bigint;
  era: { period: number; phase: number } | null;
  birthBlock: number;
  metadataHashMode: number;
  call: { pallet: number; call: number; netuid: number; dests: number[]; weights: number[]; versionKey: bigint };
}

export interface FakeSubtensor {
  url: string;
  /** Every accepted `set_weights`, decoded. */
  submitted: SubmittedExtrinsic[];
  /** Every `author_submitExtrinsic` refused, with the node's reason. */
  rejected: string[];
  /** JSON-RPC method names received, in order. */
  calls: string[];
  /** Replace a subnet's neurons (registrations, deregistrations). */
  setNeurons(netuid: number, neurons: FakeNeuron[]): void;
  /** Make every JSON-RPC call fail (a node that is down or broken). */
  setFailing(failing: boolean): void;
  blockHash(n: number): string;
  close(): Promise<void>;
}

class RpcError extends Error {
  readonly code: number;
  readonly data?: string;
  constructor(code: number, message: string, data?: string) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

const hex = (b: Uint8Array) => u8aToHex(b);
const twox128 = (s: string) => xxhashAsU8a(stringToU8a(s), 128);
const accountBytes = (ss58: string) => decodeAddress(ss58);
const apiId = (name: string) => hex(blake2AsU8a(stringToU8a(name), 64));

function encodeNeuron(netuid: number, n: FakeNeuron): Uint8Array {
  const axon = n.axon ?? { block: 0, version: 0, ip: 0n, port: 0, ipType: 0, protocol: 0 };
  const stake = n.stake ?? [];
  return concat(
    accountBytes(n.hotkey),
    accountBytes(n.coldkey),
    compact(n.uid),
    compact(netuid),
    bool(n.active ?? true),
    // AxonInfo: block u64, version u32, ip u128, port u16, ip_type u8, protocol u8, 2 placeholders
    concat(u64(axon.block), u32(axon.version), u128(axon.ip), u16(axon.port), u8(axon.ipType), u8(axon.protocol)),
    u8(0),
    u8(0),
    // PrometheusInfo: block u64, version u32, ip u128, port u16, ip_type u8 (never served here)
    concat(u64(0), u32(0), u128(0), u16(0), u8(0)),
    vec(stake.map(([coldkey, rao]) => concat(accountBytes(coldkey), compact(rao)))),
    compact(0), // rank
    compact(0), // emission
    compact(n.incentive ?? 0),
    compact(0), // consensus
    compact(n.trust ?? 0),
    compact(n.validatorTrust ?? 0),
    compact(0), // dividends
    compact(n.lastUpdate ?? 0),
    bool(n.validatorPermit ?? false),
    compact(0), // pruning_score
  );
}

/** Decodes a mortal era's two bytes (sp_runtime::generic::Era). */
function decodeEra(r: Reader): { period: number; phase: number } | null {
  const first = r.u8();
  if (first === 0) return null;
  const encoded = first + (r.u8() << 8);
  const period = 2 << (encoded % (1 << 4));
  const quantize = Math.max(period >> 12, 1);
  return { period, phase: (encoded >> 4) * quantize };
}

export async function startFakeSubtensor(options: FakeSubtensorOptions): Promise<FakeSubtensor> {
  const metadata = buildSubtensorMetadata();
  const subnets = new Map<number, FakeNeuron[]>(Object.entries(options.subnets).map(([k, v]) => [Number(k), v]));
  const rateLimits = options.weightsRateLimit ?? {};
  const nonces = new Map<string, number>();
  const submitted: SubmittedExtrinsic[] = [];
  const rejected: string[] = [];
  const calls: string[] = [];
  let failing = false;
  const head = options.head;
  const finalized = head - (options.finalityLag ?? 2);

  // Block n's hash is blake2_256 of its SCALE header, as on a real chain: the signer
  // hashes the header it was given to name the era's birth block.
  const stateRoot = (n: number) => blake2AsU8a(stringToU8a(`state ${n}`), 256);
  const extrinsicsRoot = (n: number) => blake2AsU8a(stringToU8a(`extrinsics ${n}`), 256);
  const hashes: string[] = [];
  for (let n = 0; n <= head; n++) {
    const parent = n === 0 ? new Uint8Array(32) : hexToU8a(hashes[n - 1]);
    hashes.push(hex(blake2AsU8a(concat(parent, compact(n), stateRoot(n), extrinsicsRoot(n), vec([])), 256)));
  }
  const hashOf = (n: number): string => {
    const hash = hashes[n];
    if (hash === undefined) throw new RpcError(4003, `no block ${n}`);
    return hash;
  };
  const genesis = hashOf(0);
  const numberOf = new Map<string, number>(hashes.map((h, n) => [h, n]));
  const blockAt = (at: unknown): number => {
    if (at === undefined || at === null) return head;
    const n = numberOf.get(String(at));
    if (n === undefined) throw new RpcError(4003, `Client error: UnknownBlock: Header was not found for ${at}`);
    return n;
  };
  const header = (n: number) => ({
    parentHash: n === 0 ? hex(new Uint8Array(32)) : hashOf(n - 1),
    number: `0x${n.toString(16)}`,
    stateRoot: hex(stateRoot(n)),
    extrinsicsRoot: hex(extrinsicsRoot(n)),
    digest: { logs: [] },
  });

  /** System.Events of block n: per transfer extrinsic, the events a real transfer emits. */
  const eventsOf = (n: number): Uint8Array => {
    const records: Uint8Array[] = [];
    const record = (phase: Uint8Array, event: Uint8Array) => records.push(concat(phase, event, vec([])));
    const applyExtrinsic = (i: number) => concat(u8(0), u32(i));
    const success = concat(u8(0), u8(0), compact(1_000_000), compact(0), u8(0), u8(0));
    // Extrinsic 0 is the timestamp inherent.
    record(applyExtrinsic(0), success);
    (options.transfers?.[n] ?? []).forEach((t, k) => {
      const i = k + 1;
      const fee = 125_000n;
      record(applyExtrinsic(i), concat(u8(5), u8(8), accountBytes(t.from), u64(fee)));
      record(applyExtrinsic(i), concat(u8(5), u8(2), accountBytes(t.from), accountBytes(t.to), u64(t.amountRao)));
      record(applyExtrinsic(i), concat(u8(6), u8(0), accountBytes(t.from), u64(fee), u64(0)));
      record(applyExtrinsic(i), success);
    });
    return vec(records);
  };

  const storageKey = {
    events: hex(concat(twox128("System"), twox128("Events"))),
    uidsPrefix: hex(concat(twox128("SubtensorModule"), twox128("Uids"))),
    rateLimitPrefix: hex(concat(twox128("SubtensorModule"), twox128("WeightsSetRateLimit"))),
  };

  const storage = (key: string, n: number): string | null => {
    if (key === storageKey.events) return hex(eventsOf(n));
    if (key.startsWith(storageKey.rateLimitPrefix)) {
      const netuid = new Reader(hexToU8a(`0x${key.slice(storageKey.rateLimitPrefix.length)}`)).u16();
      const limit = rateLimits[netuid];
      return limit === undefined ? null : hex(u64(limit));
    }
    if (key.startsWith(storageKey.uidsPrefix)) {
      const r = new Reader(hexToU8a(`0x${key.slice(storageKey.uidsPrefix.length)}`));
      const netuid = r.u16();
      const hashed = r.bytes(16);
      const account = r.bytes(32);
      if (!u8aEq(hashed, blake2AsU8a(account, 128))) throw new RpcError(-32602, "bad Blake2_128Concat key");
      const hotkey = encodeAddress(account, SS58);
      const neuron = subnets.get(netuid)?.find((x) => x.hotkey === hotkey);
      return neuron ? hex(u16(neuron.uid)) : null;
    }
    return null;
  };

  const runtimeCall = (method: string, data: Uint8Array): Uint8Array => {
    const r = new Reader(data);
    switch (method) {
      case "Metadata_metadata_versions":
        return vec([u32(14)]);
      case "Metadata_metadata_at_version":
        return option(r.u32() === 14 ? concat(compact(metadata.bytes.length), metadata.bytes) : null);
      case "AccountNonceApi_account_nonce":
        return u32(nonces.get(encodeAddress(r.bytes(32), SS58)) ?? 0);
      case "NeuronInfoRuntimeApi_get_neurons_lite": {
        const netuid = r.u16();
        return vec((subnets.get(netuid) ?? []).map((n) => encodeNeuron(netuid, n)));
      }
      case "NeuronInfoRuntimeApi_get_neuron_lite": {
        const netuid = r.u16();
        const uid = r.u16();
        const neuron = subnets.get(netuid)?.find((n) => n.uid === uid);
        return option(neuron ? encodeNeuron(netuid, neuron) : null);
      }
      default:
        throw new RpcError(4003, `Client error: Execution failed: Other: Exported method ${method} is not found`);
    }
  };

  const submit = (xt: Uint8Array): string => {
    const invalid = (reason: string) => {
      rejected.push(reason);
      return new RpcError(1010, "Invalid Transaction", reason);
    };
    const r = new Reader(xt);
    const length = Number(r.compact());
    if (length !== r.remaining) throw invalid("length prefix does not match");
    if (r.u8() !== 0x84) throw invalid("not a signed v4 extrinsic");
    if (r.u8() !== 0) throw invalid("address is not MultiAddress::Id");
    const signer = r.bytes(32);
    if (r.u8() !== 1) throw invalid("signature is not MultiSignature::Sr25519");
    const signature = r.bytes(64);
    const extraStart = r.offset;
    // Signed extra, in TransactionExtensions order: CheckMortality, CheckNonce,
    // ChargeTransactionPayment, CheckMetadataHash (the others carry no data).
    const era = decodeEra(r);
    const nonce = Number(r.compact());
    const tip = r.compact();
    const metadataHashMode = r.u8();
    const extra = xt.slice(extraStart, r.offset);
    const callBytes = xt.slice(r.offset);
    const pallet = r.u8();
    const callIndex = r.u8();
    if (pallet !== 7 || callIndex !== 0)
      throw invalid(`call ${pallet}/${callIndex} is not SubtensorModule.set_weights`);
    const netuid = r.u16();
    const dests = r.vec((x) => x.u16());
    const weights = r.vec((x) => x.u16());
    const versionKey = r.u64();
    if (r.remaining !== 0) throw invalid("trailing bytes after the call");
    if (metadataHashMode !== 0) throw invalid("CheckMetadataHash enabled without a metadata hash");
    const birthBlock = era
      ? Math.floor((Math.max(head, era.phase) - era.phase) / era.period) * era.period + era.phase
      : 0;
    if (era && (birthBlock > head || head >= birthBlock + era.period)) throw invalid("transaction is outdated");
    const additional = concat(
      u32(SPEC_VERSION),
      u32(TX_VERSION),
      hexToU8a(genesis),
      hexToU8a(era ? hashOf(birthBlock) : genesis),
      option(null),
    );
    const payload = concat(callBytes, extra, additional);
    const message = payload.length > 256 ? blake2AsU8a(payload, 256) : payload;
    if (!sr25519Verify(message, signature, signer)) throw invalid("bad signature");
    const signerSs58 = encodeAddress(signer, SS58);
    const expected = nonces.get(signerSs58) ?? 0;
    if (nonce !== expected) throw invalid(nonce < expected ? "nonce is stale" : "nonce is in the future");
    nonces.set(signerSs58, expected + 1);
    const hash = hex(blake2AsU8a(xt, 256));
    submitted.push({
      hash,
      raw: hex(xt),
      signer: signerSs58,
      nonce,
      tip,
      era,
      birthBlock,
      metadataHashMode,
      call: { pallet, call: callIndex, netuid, dests, weights, versionKey },
    });
    // As the chain does once the extrinsic is in a block: the validator's last update moves.
    const neuron = subnets.get(netuid)?.find((n) => n.hotkey === signerSs58);
    if (neuron) neuron.lastUpdate = head;
    return hash;
  };

  const METHODS: Record<string, (params: unknown[]) => unknown> = {
    rpc_methods: () => ({ version: 1, methods: Object.keys(METHODS) }),
    system_chain: () => "Bittensor",
    system_name: () => "fake-subtensor",
    system_version: () => "0.0.0",
    system_properties: () => ({ ss58Format: SS58, tokenDecimals: 9, tokenSymbol: "TAO" }),
    system_accountNextIndex: ([address]) => nonces.get(String(address)) ?? 0,
    chain_getBlockHash: ([n]) => {
      const number = n === undefined || n === null ? head : Number(n);
      return number <= head ? hashOf(number) : null;
    },
    chain_getFinalizedHead: () => hashOf(finalized),
    chain_getHeader: ([at]) => header(blockAt(at)),
    chain_getBlock: ([at]) => {
      const n = blockAt(at);
      return { block: { header: header(n), extrinsics: [] }, justifications: null };
    },
    state_getRuntimeVersion: () => ({
      specName: "node-subtensor",
      implName: "node-subtensor",
      authoringVersion: 1,
      specVersion: SPEC_VERSION,
      implVersion: 1,
      apis: [
        [apiId("Core"), 5],
        [apiId("Metadata"), 2],
        [apiId("AccountNonceApi"), 1],
        [apiId("NeuronInfoRuntimeApi"), 1],
      ],
      transactionVersion: TX_VERSION,
      stateVersion: 1,
    }),
    state_getMetadata: () => hex(metadata.bytes),
    state_call: ([method, data, at]) => {
      blockAt(at);
      return hex(runtimeCall(String(method), hexToU8a(String(data))));
    },
    state_getStorage: ([key, at]) => storage(String(key), blockAt(at)),
    state_queryStorageAt: ([keys, at]) => {
      const n = blockAt(at);
      return [{ block: hashOf(n), changes: (keys as string[]).map((k) => [k, storage(k, n)]) }];
    },
    author_submitExtrinsic: ([xt]) => submit(hexToU8a(String(xt))),
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const answer = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (failing) return answer(503, { error: "unavailable" });
      // For tests in workerd, which cannot reach this process's memory.
      if (req.method === "GET" && req.url === "/submitted") {
        return answer(200, JSON.parse(JSON.stringify(submitted, (_, v) => (typeof v === "bigint" ? v.toString() : v))));
      }
      let request: { id?: unknown; method?: string; params?: unknown[] };
      try {
        request = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return answer(200, { jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } });
      }
      const method = String(request.method);
      calls.push(method);
      const handler = METHODS[method];
      try {
        if (!handler) throw new RpcError(-32601, "Method not found");
        answer(200, { jsonrpc: "2.0", id: request.id, result: handler(request.params ?? []) });
      } catch (error) {
        const e = error instanceof RpcError ? error : new RpcError(-32603, (error as Error).message);
        answer(200, { jsonrpc: "2.0", id: request.id, error: { code: e.code, message: e.message, data: e.data } });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    submitted,
    rejected,
    calls,
    setNeurons: (netuid, neurons) => subnets.set(netuid, neurons),
    setFailing: (value) => {
      failing = value;
    },
    blockHash: hashOf,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** An IPv4 address as the chain's u128. */
export function ipv4(address: string): bigint {
  return address.split(".").reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}
