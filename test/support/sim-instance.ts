/**
 * @module A simulated chute instance: a real Node HTTP server speaking the instance
 * protocol (docs/protocols.md, "Instance protocol"): `GET /_alive`, the signed
 * `POST /_exchange` (with an injectable `unwrapKey`), `POST /_ping` and enveloped
 * `POST /_invoke` calls (src/lib/instance-envelope.ts, the same code as the gateway's
 * side), answered with the response MAC.
 *
 * Test cords, by the cord path the envelope names:
 * - `/echo` JSON echo of the call (method, path, query, parsed body, ids);
 * - `/stream` SSE of `chunks` events (default 200) every `interval_ms` (default 1), then `[DONE]`;
 * - `/chat`, `/completion`, `/chat_stream`, `/completion_stream`, `/get_models`, `/embed`:
 *   OpenAI-shaped answers with token usage (vLLM/TEI template cords);
 * - `/slow` answers after `delay_ms`; `/die` streams `chunks` events then drops the
 *   connection; `/error` answers `status` (default 500) with a detail.
 * Faults that apply to every cord (`instance.faults`) make one instance slow, dying or
 * failing while the chute's cords stay the same.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { sha256Hex } from "../../src/lib/crypto.ts";
import {
  deriveEnvelopeKeys,
  EnvelopeError,
  type EnvelopeKeys,
  INVOKE_PATH,
  isPingNonce,
  type OpenedInvocation,
  openInvocation,
  pingMac,
  RESPONSE_MAC_HEADER,
  ReplayGuard,
  responseMac,
} from "../../src/lib/instance-envelope.ts";
import { ss58PublicKey, verifySr25519 } from "../../src/lib/sr25519.ts";

export interface SimInstanceFaults {
  /** Wait this long before answering any call. */
  delayMs?: number;
  /** Stream this many events of any SSE answer, then drop the connection. */
  dieAfterChunks?: number;
  /** Answer every call with this status and a JSON detail. */
  status?: number;
}

export interface SimInstanceOptions {
  /** The validator hotkey (ss58) whose signature `/_exchange` requires. */
  validatorHotkey?: string;
  /** Unwraps the exchange's `wrapped_key` into the 32-byte session key. */
  unwrapKey?: (wrapped: unknown) => Promise<Uint8Array>;
  /** Start already holding this key (gateway tests that seed instance rows directly). */
  sessionKey?: Uint8Array;
  /** Required with `sessionKey`; otherwise learnt from the exchange. */
  instanceId?: string;
  /** The model name reported by `/get_models` and in completions. */
  model?: string;
  host?: string;
  port?: number;
}

export interface SimInstanceCall {
  invocationId: string;
  path: string;
  method: string;
}

export interface SimInstance {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  readonly instanceId: string | undefined;
  /** Whether a session key is held (set at start or by `/_exchange`). */
  readonly keyed: boolean;
  /** The session key held (tests that seal envelopes themselves, e.g. the benchmark's direct target). */
  readonly sessionKey: Uint8Array | undefined;
  /** Calls that opened correctly, in order of arrival. */
  readonly calls: SimInstanceCall[];
  /** Calls whose client went away before the answer ended. */
  readonly aborted: SimInstanceCall[];
  /** Calls being answered right now. */
  readonly inFlight: number;
  faults: SimInstanceFaults;
  close(): Promise<void>;
}

/** The validator's nonce window, as for every hotkey signature (src/lib/signatures.ts). */
const SIGNATURE_WINDOW_SECONDS = 600;

const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
};

const readBody = (req: http.IncomingMessage): Promise<Uint8Array> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(new Uint8Array(Buffer.concat(chunks))));
    req.on("error", reject);
  });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function parseJson(bytes: Uint8Array): Record<string, unknown> {
  if (bytes.length === 0) return {};
  try {
    const value = JSON.parse(new TextDecoder().decode(bytes));
    return value && typeof value === "object" && !Array.isArray(value) ? value : { value };
  } catch {
    return { text: new TextDecoder().decode(bytes) };
  }
}

const num = (value: unknown, fallback: number) =>
  typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : fallback;

export async function startSimInstance(options: SimInstanceOptions = {}): Promise<SimInstance> {
  if (options.sessionKey && !options.instanceId)
    throw new Error("a sim instance started with a key needs its instanceId");
  const model = options.model ?? "sim/model";
  let instanceId = options.instanceId;
  let sessionKey = options.sessionKey;
  let keys: EnvelopeKeys | undefined =
    sessionKey && instanceId ? await deriveEnvelopeKeys(sessionKey, instanceId) : undefined;
  const guard = new ReplayGuard();
  const calls: SimInstanceCall[] = [];
  const aborted: SimInstanceCall[] = [];
  let inFlight = 0;
  const sockets = new Set<import("node:net").Socket>();

  async function exchange(req: http.IncomingMessage, res: http.ServerResponse) {
    const body = await readBody(req);
    const hotkey = String(req.headers["x-chutes-hotkey"] ?? "");
    const nonce = String(req.headers["x-chutes-nonce"] ?? "");
    const signature = String(req.headers["x-chutes-signature"] ?? "");
    const publicKey = ss58PublicKey(hotkey);
    const fresh = /^\d{1,12}$/.test(nonce) && Math.abs(Date.now() / 1000 - Number(nonce)) < SIGNATURE_WINDOW_SECONDS;
    const signed =
      publicKey !== null &&
      hotkey === options.validatorHotkey &&
      fresh &&
      verifySr25519(`${hotkey}:${nonce}:${await sha256Hex(body)}`, signature, publicKey);
    if (!signed) return json(res, 401, { detail: "the exchange must be signed by the validator hotkey" });
    const payload = parseJson(body);
    if (typeof payload.instance_id !== "string" || !payload.wrapped_key || typeof payload.wrapped_key !== "object") {
      return json(res, 400, { detail: "expected {instance_id, wrapped_key}" });
    }
    if (instanceId && payload.instance_id !== instanceId) {
      return json(res, 400, { detail: `this instance is ${instanceId}` });
    }
    let key: Uint8Array;
    try {
      if (!options.unwrapKey) throw new Error("no unwrapKey configured");
      key = await options.unwrapKey(payload.wrapped_key);
      if (key.length !== 32) throw new Error("the unwrapped key is not 32 bytes");
    } catch (error) {
      return json(res, 400, { detail: `cannot unwrap the session key: ${(error as Error).message}` });
    }
    instanceId = payload.instance_id;
    sessionKey = key;
    keys = await deriveEnvelopeKeys(key, payload.instance_id);
    json(res, 200, { ok: true });
  }

  async function ping(req: http.IncomingMessage, res: http.ServerResponse) {
    const payload = parseJson(await readBody(req));
    if (!sessionKey || !instanceId) return json(res, 426, { detail: "no session key yet: key exchange required" });
    if (!isPingNonce(payload.nonce)) return json(res, 400, { detail: "nonce must be 32 lower-case hex digits" });
    json(res, 200, { mac: await pingMac(sessionKey, instanceId, payload.nonce) });
  }

  async function invoke(req: http.IncomingMessage, res: http.ServerResponse) {
    const body = await readBody(req);
    if (!keys) return json(res, 426, { detail: "no session key yet: key exchange required" });
    let call: OpenedInvocation;
    try {
      call = await openCall(keys, req, body);
    } catch (error) {
      if (error instanceof EnvelopeError) return json(res, error.status, { detail: error.message });
      throw error;
    }
    const record = { invocationId: call.invocationId, path: call.path, method: call.method };
    calls.push(record);
    inFlight++;
    let finished = false;
    res.on("finish", () => {
      finished = true;
    });
    res.on("close", () => {
      inFlight--;
      if (!finished) aborted.push(record);
    });
    await answer(keys, call, res);
  }

  function openCall(k: EnvelopeKeys, req: http.IncomingMessage, body: Uint8Array) {
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) if (typeof value === "string") headers.set(name, value);
    return openInvocation(k, headers, body, guard);
  }

  async function answer(k: EnvelopeKeys, call: OpenedInvocation, res: http.ServerResponse) {
    const input = parseJson(call.body);
    const faults = instance.faults;
    const mac = (status: number, contentType: string) =>
      responseMac(k, call.invocationId, call.nonce, status, contentType);
    const reply = async (status: number, body: unknown) =>
      json(res, status, body, { [RESPONSE_MAC_HEADER]: await mac(status, "application/json") });
    const delay = faults.delayMs ?? (call.path === "/slow" ? num(input.delay_ms, 1000) : 0);
    if (delay > 0) await sleep(delay);
    if (res.destroyed) return;
    if (faults.status) return reply(faults.status, { detail: `simulated failure ${faults.status}` });

    const sse = async (events: string[], intervalMs: number, dieAfter?: number) => {
      res.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        [RESPONSE_MAC_HEADER]: await mac(200, "text/event-stream"),
      });
      for (let i = 0; i < events.length; i++) {
        if (res.destroyed) return;
        if (dieAfter !== undefined && i >= dieAfter) {
          res.socket?.destroy();
          return;
        }
        res.write(events[i]);
        if (intervalMs > 0 && i < events.length - 1) await sleep(intervalMs);
      }
      res.end();
    };
    const dieAfter = faults.dieAfterChunks;

    switch (call.path) {
      case "/echo":
      case "/slow":
        return reply(200, {
          ok: true,
          instance_id: k.instanceId,
          invocation_id: call.invocationId,
          method: call.method,
          path: call.path,
          query: call.query,
          content_type: call.contentType,
          body: input,
        });
      case "/error":
        return reply(num(input.status, 500) || 500, { detail: "simulated cord error" });
      case "/stream":
      case "/die": {
        const n = num(input.chunks, 200);
        const events = Array.from({ length: n }, (_, i) => `data: ${JSON.stringify({ i })}\n\n`);
        events.push("data: [DONE]\n\n");
        return sse(
          events,
          num(input.interval_ms, 1),
          call.path === "/die" ? Math.min(n, num(input.die_after, 3)) : dieAfter,
        );
      }
      case "/chat_stream":
      case "/completion_stream": {
        const n = num(input.max_tokens, 8);
        const chat = call.path === "/chat_stream";
        const id = `cmpl-${call.invocationId}`;
        const chunk = (extra: Record<string, unknown>) =>
          `data: ${JSON.stringify({ id, object: chat ? "chat.completion.chunk" : "text_completion", model, ...extra })}\n\n`;
        const events = Array.from({ length: n }, (_, i) =>
          chunk({ choices: [chat ? { index: 0, delta: { content: `t${i} ` } } : { index: 0, text: `t${i} ` }] }),
        );
        const usage = { prompt_tokens: 5, completion_tokens: n, total_tokens: 5 + n };
        events.push(chunk({ choices: [], usage }));
        events.push("data: [DONE]\n\n");
        return sse(events, num(input.interval_ms, 1), dieAfter);
      }
      case "/chat":
      case "/completion": {
        const n = num(input.max_tokens, 8);
        const text = Array.from({ length: n }, (_, i) => `t${i} `).join("");
        const chat = call.path === "/chat";
        return reply(200, {
          id: `cmpl-${call.invocationId}`,
          object: chat ? "chat.completion" : "text_completion",
          model,
          choices: [chat ? { index: 0, message: { role: "assistant", content: text } } : { index: 0, text }],
          usage: { prompt_tokens: 5, completion_tokens: n, total_tokens: 5 + n },
        });
      }
      case "/get_models":
        return reply(200, { object: "list", data: [{ id: model, object: "model", owned_by: "sim" }] });
      case "/embed":
        return reply(200, {
          object: "list",
          model,
          data: [{ object: "embedding", index: 0, embedding: [0.1, 0.2, 0.3] }],
          usage: { prompt_tokens: 3, total_tokens: 3 },
        });
      default:
        return reply(404, { detail: `the sim instance has no cord ${call.path}` });
    }
  }

  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const handle =
      req.method === "GET" && path === "/_alive"
        ? async () => {
            res.writeHead(200, { "content-type": "text/plain" });
            res.end("ok");
          }
        : req.method === "POST" && path === "/_exchange"
          ? () => exchange(req, res)
          : req.method === "POST" && path === "/_ping"
            ? () => ping(req, res)
            : req.method === "POST" && path === INVOKE_PATH
              ? () => invoke(req, res)
              : async () => json(res, 404, { detail: `no route ${req.method} ${path}` });
    handle().catch((error: unknown) => {
      if (!res.headersSent) json(res, 500, { detail: String(error) });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve));
  const port = (server.address() as AddressInfo).port;

  const instance: SimInstance = {
    host,
    port,
    url: `http://${host}:${port}`,
    get instanceId() {
      return instanceId;
    },
    get keyed() {
      return keys !== undefined;
    },
    get sessionKey() {
      return sessionKey;
    },
    calls,
    aborted,
    get inFlight() {
      return inFlight;
    },
    faults: {},
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return instance;
}
