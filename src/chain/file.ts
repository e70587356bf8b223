/**
 * @module The embedded dev chain (`CHAIN_MODE=file`): reads the metagraph document and
 * blocks that `npm start` serves from infra/dev/dev-chain.ts, and records weight
 * submissions there instead of submitting them. The Worker cannot read local files, so
 * the document reaches it over loopback HTTP; the server re-reads the file on every
 * request, so an edit (or `POST /neurons` from a simulated miner) shows at the next sync.
 * Refused outside development and tests (src/env.ts).
 */
import type { z } from "zod";
import { checkWeightsRequest } from "./convert.ts";
import {
  type DevNeuron,
  devBlockSchema,
  devBlockTransfersSchema,
  devMetagraphSchema,
  devWeightsSchema,
} from "./dev-format.ts";
import { hotkeyFromSeed } from "./keys.ts";
import {
  type BlockRef,
  type BlockTransfers,
  type Chain,
  ChainError,
  type Neuron,
  type ValidatorState,
  type WeightSubmission,
  type WeightsRequest,
} from "./types.ts";

export interface FileChainOptions {
  /** Base URL of the dev chain server, e.g. `http://127.0.0.1:40123`. */
  url: string;
  validatorSeed?: string;
}

function toNeuron(netuid: number, dev: DevNeuron): Neuron {
  return {
    netuid,
    uid: dev.uid,
    hotkey: dev.hotkey,
    coldkey: dev.coldkey,
    active: dev.active,
    stakeRao: BigInt(Math.round(dev.stake * 1e9)),
    incentive: dev.incentive,
    trust: dev.trust,
    validatorTrust: dev.validator_trust,
    validatorPermit: dev.validator_permit,
    lastUpdate: dev.last_update,
    axon: dev.axon && {
      ip: dev.axon.ip,
      port: dev.axon.port,
      ipType: dev.axon.ip_type,
      protocol: dev.axon.protocol,
      version: dev.axon.version,
      block: dev.axon.block,
    },
  };
}

export class FileChain implements Chain {
  readonly mode = "file" as const;
  readonly validatorHotkey: string | null;
  readonly #url: string;

  constructor(options: FileChainOptions) {
    this.#url = options.url.replace(/\/+$/, "");
    this.validatorHotkey = options.validatorSeed ? hotkeyFromSeed(options.validatorSeed) : null;
  }

  async #get<S extends z.ZodType>(path: string, schema: S): Promise<z.output<S> | null> {
    const res = await fetch(`${this.#url}${path}`);
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    return this.#parse(path, res, schema);
  }

  async #parse<S extends z.ZodType>(path: string, res: Response, schema: S): Promise<z.output<S>> {
    const text = await res.text();
    if (!res.ok) throw new ChainError(`dev chain ${path}: ${res.status} ${text.slice(0, 200)}`);
    const parsed = schema.safeParse(JSON.parse(text));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ChainError(`dev chain ${path}: ${issue?.path.join(".")}: ${issue?.message}`);
    }
    return parsed.data;
  }

  async #metagraph() {
    const doc = await this.#get("/metagraph", devMetagraphSchema);
    if (!doc) throw new ChainError("dev chain has no metagraph");
    return doc;
  }

  async getNeurons(netuid: number): Promise<Neuron[]> {
    const doc = await this.#metagraph();
    const neurons = (doc.subnets[String(netuid)] ?? []).map((n) => toNeuron(netuid, n));
    return neurons.sort((a, b) => a.uid - b.uid);
  }

  async getFinalizedHead(): Promise<BlockRef> {
    const head = await this.#get("/head", devBlockSchema);
    if (!head) throw new ChainError("dev chain has no head");
    return head;
  }

  async getTransfers(blockNumber: number): Promise<BlockTransfers | null> {
    const block = await this.#get(`/blocks/${blockNumber}`, devBlockTransfersSchema);
    if (!block) return null;
    return {
      number: block.number,
      hash: block.hash,
      transfers: block.transfers.map((t) => ({
        blockNumber: block.number,
        blockHash: block.hash,
        extrinsicIndex: t.extrinsic_index,
        eventIndex: t.event_index,
        from: t.from,
        to: t.to,
        amountRao: BigInt(t.amount_rao),
      })),
    };
  }

  async getValidatorState(netuid: number): Promise<ValidatorState> {
    const hotkey = this.#requireHotkey();
    const [doc, head, recorded] = await Promise.all([
      this.#metagraph(),
      this.getFinalizedHead(),
      this.#get(`/weights?netuid=${netuid}&hotkey=${encodeURIComponent(hotkey)}`, devWeightsSchema.array()),
    ]);
    const neuron = (doc.subnets[String(netuid)] ?? []).find((n) => n.hotkey === hotkey);
    const lastRecorded = Math.max(0, ...(recorded ?? []).map((w) => w.block));
    return {
      netuid,
      hotkey,
      uid: neuron?.uid ?? null,
      lastUpdate: neuron ? Math.max(neuron.last_update, lastRecorded) : null,
      currentBlock: head.number,
      weightsRateLimit: doc.weights_rate_limit,
    };
  }

  async setWeights(request: WeightsRequest): Promise<WeightSubmission> {
    const hotkey = this.#requireHotkey();
    checkWeightsRequest(request);
    const res = await fetch(`${this.#url}/weights`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        netuid: request.netuid,
        hotkey,
        uids: request.uids,
        weights: request.weights,
        version_key: request.versionKey,
      }),
    });
    const stored = await this.#parse("/weights", res, devWeightsSchema);
    return { ...request, mode: "file", hotkey, extrinsicHash: null, block: stored.block };
  }

  async close(): Promise<void> {}

  #requireHotkey(): string {
    if (!this.validatorHotkey) throw new ChainError("no validator hotkey: VALIDATOR_HOTKEY_SEED is not configured");
    return this.validatorHotkey;
  }
}
