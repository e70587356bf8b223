/**
 * @module The dev chain behind `CHAIN_MODE=file` (src/chain/file.ts): a loopback HTTP
 * server over a metagraph document on disk. It exists only where `npm start` (or a test
 * setup) runs it; a deployed Worker refuses `file` mode.
 *
 * - The document is re-read on every request, so editing the file is enough; a
 *   simulated miner can also register itself with `POST /neurons` (and leave with
 *   `DELETE /neurons/:netuid/:hotkey`), which writes the file and then calls `onChange`
 *   (npm start uses it to run the metagraph sync at once instead of within a minute).
 * - Blocks: the head advances every 12 s like finney's; `POST /transfers` puts transfers
 *   in a new block at once. Every block is final.
 * - `POST /weights` records a weight submission (nothing is submitted anywhere);
 *   `GET /weights` lists them.
 */
import { createHash } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import {
  type DevBlockTransfers,
  type DevMetagraph,
  type DevWeights,
  devMetagraphSchema,
  devNeuronSchema,
  devTransferSchema,
  devWeightsSchema,
} from "../../src/chain/dev-format.ts";

const BLOCK_MS = 12_000;

export interface DevChainOptions {
  /** The metagraph document (infra/dev/metagraph.json's format). */
  file: string;
  port?: number;
  /** Called after a write through the API (not after a hand edit); its answer is returned as `sync`. */
  onChange?: () => Promise<string>;
}

export interface DevChain {
  url: string;
  close(): Promise<void>;
}

const neuronInput = devNeuronSchema.extend({
  netuid: z.number().int().min(0).max(65_535),
  uid: z.number().int().min(0).max(65_535).optional(),
});
const transfersInput = z.array(devTransferSchema.pick({ from: true, to: true, amount_rao: true })).min(1);
const weightsInput = devWeightsSchema.omit({ block: true });

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new HttpError(400, "body is not JSON");
  }
}

function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new HttpError(422, `${issue?.path.join(".")}: ${issue?.message}`);
  }
  return result.data;
}

export async function startDevChain(options: DevChainOptions): Promise<DevChain> {
  const startedAt = Date.now();
  let extraBlocks = 0;
  const transfers = new Map<number, DevBlockTransfers["transfers"]>();
  const weights: DevWeights[] = [];

  const head = () => Math.floor((Date.now() - startedAt) / BLOCK_MS) + 1 + extraBlocks;
  const hashOf = (n: number) => `0x${createHash("sha256").update(`dev-chain block ${n}`).digest("hex")}`;
  const load = (): DevMetagraph => parse(devMetagraphSchema, JSON.parse(readFileSync(options.file, "utf8")));
  const save = (doc: DevMetagraph) => {
    // Write then rename: a reader never sees half a file.
    writeFileSync(`${options.file}.tmp`, `${JSON.stringify(doc, null, 2)}\n`);
    renameSync(`${options.file}.tmp`, options.file);
  };
  const changed = async (): Promise<string> =>
    options.onChange ? options.onChange().catch((error: Error) => `failed: ${error.message}`) : "not run";

  async function route(req: IncomingMessage, url: URL): Promise<unknown> {
    const method = req.method ?? "GET";
    const path = url.pathname;
    if (method === "GET" && path === "/metagraph") return JSON.parse(readFileSync(options.file, "utf8"));
    if (method === "GET" && path === "/head") return { number: head(), hash: hashOf(head()) };
    const block = /^\/blocks\/(\d+)$/.exec(path);
    if (method === "GET" && block) {
      const n = Number(block[1]);
      if (n > head()) throw new HttpError(404, "not finalised yet");
      return { number: n, hash: hashOf(n), transfers: transfers.get(n) ?? [] };
    }
    if (method === "GET" && path === "/weights") {
      const netuid = url.searchParams.get("netuid");
      const hotkey = url.searchParams.get("hotkey");
      return weights.filter((w) => (!netuid || w.netuid === Number(netuid)) && (!hotkey || w.hotkey === hotkey));
    }
    if (method === "POST" && path === "/weights") {
      const submission = { ...parse(weightsInput, await readJson(req)), block: head() };
      weights.push(submission);
      return submission;
    }
    if (method === "POST" && path === "/neurons") {
      const { netuid, ...input } = parse(neuronInput, await readJson(req));
      const doc = load();
      const others = (doc.subnets[String(netuid)] ?? []).filter((n) => n.hotkey !== input.hotkey);
      const taken = new Set(others.map((n) => n.uid));
      let uid = input.uid ?? 0;
      while (input.uid === undefined && taken.has(uid)) uid++;
      if (taken.has(uid)) throw new HttpError(409, `uid ${uid} is taken on netuid ${netuid}`);
      const neuron = { ...input, uid };
      doc.subnets[String(netuid)] = [...others, neuron].sort((a, b) => a.uid - b.uid);
      save(doc);
      return { netuid, ...neuron, sync: await changed() };
    }
    const neuron = /^\/neurons\/(\d+)\/([^/]+)$/.exec(path);
    if (method === "DELETE" && neuron) {
      const doc = load();
      const key = String(Number(neuron[1]));
      const before = doc.subnets[key] ?? [];
      const after = before.filter((n) => n.hotkey !== decodeURIComponent(neuron[2] ?? ""));
      if (after.length === before.length) throw new HttpError(404, "no such neuron");
      doc.subnets[key] = after;
      save(doc);
      return { removed: true, sync: await changed() };
    }
    if (method === "POST" && path === "/transfers") {
      const list = parse(transfersInput, await readJson(req));
      extraBlocks++;
      const n = head();
      // Each transfer is its own extrinsic after the timestamp inherent (index 0).
      transfers.set(
        n,
        list.map((t, i) => ({ ...t, extrinsic_index: i + 1, event_index: i })),
      );
      return { number: n, hash: hashOf(n) };
    }
    throw new HttpError(404, `no route for ${method} ${path}`);
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    route(req, new URL(req.url ?? "/", "http://dev-chain"))
      .then((body) => reply(200, body))
      .catch((error: unknown) =>
        reply(error instanceof HttpError ? error.status : 500, { detail: (error as Error).message }),
      );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  load(); // fail at start on an unreadable or invalid document
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
