/**
 * @module A simulated miner for Node-side tests and `npm run sim:miner`: everything a real
 * miner runs against the validator, with real parts (docs/protocols.md, "Nodes and
 * verification"):
 *
 * - a **WebSocket** to `socket.` signed with purpose `sockets` (the `ws` client, which can
 *   send the Host and `X-Chutes-*` headers), recording every event frame;
 * - a **verification server** (`POST /challenge/proof`, validator-signed) that proves every
 *   challenged GPU with the CPU reference and opens its sealed plaintext, or misbehaves on
 *   purpose (`proofFault`): a wrong plaintext, a forged proof, hanging up mid-answer;
 * - signed REST calls: `POST /nodes/`, the verification status, instance announce,
 *   activate and delete, the `/miner/*` lists;
 * - **instances** from test/support/sim-instance.ts, whose `unwrapKey` opens the session
 *   key with the GPU proof of the GPU the validator chose (`proofUnwrapKey`).
 *
 * GPUs are H100 SXM records (they pass upstream's spec checks) with fresh UUIDs; the
 * platform proves them with its configured profile (`tiny` under `npm start`).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import WebSocket from "ws";
import { cpuExecutor } from "../../src/gpu-proof/engine.ts";
import { decryptWithProof, prove, resolve } from "../../src/gpu-proof/protocol.ts";
import { fromHex } from "../../src/lib/bytes.ts";
import { sha256Hex } from "../../src/lib/crypto.ts";
import { ss58PublicKey, verifySr25519 } from "../../src/lib/sr25519.ts";
import type { DeviceRecord } from "../../src/schemas/gpu-proof.ts";
import { type NodeArgs, proofChallengeSchema, wrappedKeySchema } from "../../src/schemas/miner-plane.ts";
import { cliHeaders, type TestHotkey } from "./chutes-cli.ts";
import { type HostResponse, hostRequest } from "./http.ts";

import { h100Device } from "./miner-seed.ts";

export { seedMiner, seedMinerAndChute } from "./miner-seed.ts";

import { type SimInstance, type SimInstanceOptions, startSimInstance } from "./sim-instance.ts";

export const API_HOST = "api.localhost";
export const SOCKET_HOST = "socket.localhost";

export type ProofFault = "wrong_plaintext" | "forged_proof" | "disconnect";

export interface SimMinerOptions {
  /** The platform's base URL (`http://127.0.0.1:<port>`); hosts are chosen by Host header. */
  baseUrl: string;
  /** A hotkey registered on the subnet. */
  hotkey: TestHotkey;
  /** The validator's ss58, whose signature the verification server and instances require. */
  validatorHotkey: string;
  /** GPUs on this simulated server (default 1). */
  gpus?: number;
  proofFault?: ProofFault;
  log?: (line: string) => void;
}

export interface MinerFrame {
  type: string;
  seq?: number;
  reason?: string;
  data?: Record<string, unknown>;
}

/** Proves `device` at `seed` with the CPU reference and opens `ciphertext` with the proof. */
export async function openWithProof(
  device: DeviceRecord,
  seed: string,
  profile: "tiny" | "small" | "full",
  ciphertext: string,
) {
  const resolved = resolve({ device, seed: BigInt(seed), profile });
  const proof = await prove(resolved, cpuExecutor);
  return { proof, plaintext: await decryptWithProof(resolved, proof, ciphertext) };
}

/** The sim instance's `unwrapKey`: the session key sealed for one of `devices` (docs/protocols.md). */
export const proofUnwrapKey =
  (devices: DeviceRecord[]) =>
  async (wrapped: unknown): Promise<Uint8Array> => {
    const parsed = wrappedKeySchema.parse(wrapped);
    const device = devices.find((d) => d.uuid === parsed.uuid);
    if (!device) throw new Error(`no GPU ${parsed.uuid} here`);
    const { plaintext } = await openWithProof(device, parsed.seed, parsed.profile, parsed.ciphertext);
    if (plaintext === null || !/^[0-9a-f]{64}$/.test(plaintext)) throw new Error("the wrapped key does not open");
    return fromHex(plaintext);
  };

async function readBody(req: http.IncomingMessage): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}

export class SimMiner {
  readonly options: SimMinerOptions;
  readonly devices: DeviceRecord[];
  readonly frames: MinerFrame[] = [];
  readonly instances: SimInstance[] = [];
  /** Challenges the verification server received. */
  challenges = 0;
  proofFault: ProofFault | undefined;
  #server: http.Server | null = null;
  #ws: WebSocket | null = null;
  #port = 0;

  constructor(options: SimMinerOptions) {
    this.options = options;
    this.proofFault = options.proofFault;
    this.devices = Array.from({ length: options.gpus ?? 1 }, h100Device);
  }

  get hotkey(): string {
    return this.options.hotkey.ss58;
  }

  get verificationPort(): number {
    return this.#port;
  }

  #log(line: string) {
    this.options.log?.(`[sim-miner ${this.hotkey.slice(0, 8)}] ${line}`);
  }

  /** Starts the verification server on a free loopback port. */
  async startVerificationServer(): Promise<void> {
    const server = http.createServer((req, res) => {
      void this.#answer(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ detail: (error as Error).message }));
      });
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
  }

  async #answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req);
    const reply = (status: number, value: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(value));
    };
    if (req.method !== "POST" || req.url !== "/challenge/proof") return reply(404, { detail: "not found" });
    const hotkey = String(req.headers["x-chutes-hotkey"] ?? "");
    const nonce = String(req.headers["x-chutes-nonce"] ?? "");
    const key = ss58PublicKey(hotkey);
    const fresh = Math.abs(Date.now() / 1000 - Number(nonce)) < 30;
    if (
      hotkey !== this.options.validatorHotkey ||
      !key ||
      !fresh ||
      !verifySr25519(`${hotkey}:${nonce}:${await sha256Hex(body)}`, String(req.headers["x-chutes-signature"]), key)
    ) {
      return reply(401, { detail: "go away: not signed by my validator" });
    }
    this.challenges++;
    const challenge = proofChallengeSchema.parse(JSON.parse(new TextDecoder().decode(body)));
    this.#log(`challenge for ${Object.keys(challenge.ciphertexts).length} GPU(s), profile ${challenge.profile}`);
    if (this.proofFault === "disconnect") {
      req.socket.destroy();
      return;
    }
    const answer: Record<string, { plaintext: string; commitments: string[] }> = {};
    for (const [uuid, ciphertext] of Object.entries(challenge.ciphertexts)) {
      const device = this.devices.find((d) => d.uuid === uuid);
      if (!device) return reply(400, { detail: `no GPU ${uuid} here` });
      const { proof, plaintext } = await openWithProof(device, challenge.seed, challenge.profile, ciphertext);
      answer[uuid] = {
        plaintext: this.proofFault === "wrong_plaintext" ? "not the plaintext" : (plaintext ?? ""),
        commitments:
          this.proofFault === "forged_proof" ? proof.commitments.map(() => "ab".repeat(32)) : proof.commitments,
      };
    }
    reply(200, answer);
  }

  /** Opens the miner socket (signed upgrade) and records every frame. */
  async connect(): Promise<MinerFrame> {
    const url = new URL(this.options.baseUrl);
    const headers = await cliHeaders(this.options.hotkey, { purpose: "sockets" });
    const ws = new WebSocket(`ws://${url.host}/`, { headers: { ...headers, host: `${SOCKET_HOST}:${url.port}` } });
    this.#ws = ws;
    ws.on("message", (data) => this.frames.push(JSON.parse(String(data)) as MinerFrame));
    await new Promise<void>((ok, fail) => {
      ws.once("open", () => ok());
      ws.once("unexpected-response", (_req, res) => fail(new Error(`socket upgrade refused: ${res.statusCode}`)));
      ws.once("error", fail);
    });
    return this.waitFrame((f) => f.type === "hello");
  }

  /** The first recorded frame matching `match` (already received or arriving within `timeoutMs`). */
  async waitFrame(match: (frame: MinerFrame) => boolean, timeoutMs = 30_000): Promise<MinerFrame> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found) return found;
      if (Date.now() > until)
        throw new Error(`no matching frame in ${timeoutMs} ms; got ${JSON.stringify(this.frames)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  waitEvent(reason: string, data: Record<string, unknown> = {}, timeoutMs?: number): Promise<MinerFrame> {
    return this.waitFrame(
      (f) => f.type === "event" && f.reason === reason && Object.entries(data).every(([k, v]) => f.data?.[k] === v),
      timeoutMs,
    );
  }

  /** A signed call to `api.`: a JSON body (signed by its hash) or a purpose. */
  async call(method: string, path: string, signing: { body?: unknown; purpose?: string }): Promise<HostResponse> {
    const body = signing.body === undefined ? undefined : JSON.stringify(signing.body);
    const headers = await cliHeaders(this.options.hotkey, { body, purpose: signing.purpose });
    return hostRequest(this.options.baseUrl, API_HOST, path, { method, headers, body, timeoutMs: 60_000 });
  }

  /** What `POST /nodes/` carries for this server's GPUs. */
  nodeArgs(): NodeArgs[] {
    return this.devices.map((device, index) => ({
      ...device,
      device_index: index,
      gpu_identifier: "h100_sxm",
      verification_host: "127.0.0.1",
      verification_port: this.#port,
    }));
  }

  async registerNodes(): Promise<{ task_id: string; nodes: Record<string, unknown>[] }> {
    const res = await this.call("POST", "/nodes/", { body: { nodes: this.nodeArgs() } });
    if (res.status !== 202) throw new Error(`POST /nodes/ answered ${res.status}: ${res.text}`);
    return res.json();
  }

  /** Polls the verification status (as the miner does, about once a second) until it is not pending. */
  async awaitVerification(taskId: string, timeoutMs = 90_000): Promise<Record<string, unknown>> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const res = await this.call("GET", `/nodes/verification_status?task_id=${encodeURIComponent(taskId)}`, {
        purpose: "graval",
      });
      const body = res.json();
      if (res.status !== 200 || body.status !== "pending") return { http: res.status, ...body };
      if (Date.now() > until) throw new Error(`verification still pending after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** Starts an instance whose key exchange opens with this miner's GPU proofs. */
  async startInstance(options: Partial<SimInstanceOptions> = {}): Promise<SimInstance> {
    const instance = await startSimInstance({
      validatorHotkey: this.options.validatorHotkey,
      unwrapKey: proofUnwrapKey(this.devices),
      host: "127.0.0.1",
      ...options,
    });
    this.instances.push(instance);
    return instance;
  }

  async announce(chuteId: string, host: string, port: number, nodeIds = this.devices.map((d) => d.uuid)) {
    return this.call("POST", `/instances/${chuteId}/`, { body: { node_ids: nodeIds, host, port } });
  }

  async activate(chuteId: string, instanceId: string) {
    return this.call("PATCH", `/instances/${chuteId}/${instanceId}`, { body: { active: true } });
  }

  /** PATCHes every `intervalMs` like the miner's activator, until verified (200) or gone (404). */
  async activateUntilSettled(chuteId: string, instanceId: string, timeoutMs = 90_000, intervalMs = 1000) {
    const until = Date.now() + timeoutMs;
    let patches = 0;
    for (;;) {
      const res = await this.activate(chuteId, instanceId);
      patches++;
      if (res.status !== 200 || res.json().verified === true) return { res, patches };
      if (Date.now() > until) throw new Error(`instance not verified after ${timeoutMs} ms: ${res.text}`);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  /** A `/miner/*` list, parsed from its `data:` lines. */
  async list(name: "chutes" | "images" | "nodes" | "instances" | "metrics"): Promise<unknown[]> {
    const res = await this.call("GET", `/miner/${name}/`, { purpose: "miner" });
    if (res.status !== 200) throw new Error(`/miner/${name}/ answered ${res.status}: ${res.text}`);
    return res.text
      .split("\n")
      .filter((line) => line.startsWith("data: ") && line !== "data: NO_ITEMS")
      .map((line) => JSON.parse(line.slice(6)));
  }

  async close(): Promise<void> {
    this.#ws?.close();
    await Promise.all(this.instances.map((i) => i.close()));
    await new Promise<void>((ok) => (this.#server ? this.#server.close(() => ok()) : ok()));
    this.#server?.closeAllConnections();
  }
}
