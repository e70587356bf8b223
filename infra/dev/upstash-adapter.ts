/**
 * @module The local Upstash REST endpoint: lets `@upstash/redis` in the Worker talk to a
 * real Redis (`REDIS_URL`) or to the embedded twin, exactly as it talks to Upstash in
 * production.
 *
 * Protocol (what the client sends, read from `@upstash/redis` 1.39):
 * - `POST /` with a JSON command array → `{result}`, or HTTP 400 `{error}`;
 * - `POST /pipeline` with an array of command arrays → `[{result}|{error}, …]`;
 * - `POST /multi-exec` → the same, run atomically;
 * - `Authorization: Bearer <token>` is required;
 * - with `Upstash-Encoding: base64` (the client's default) every string in a reply is
 *   base64-encoded except the status reply `OK`, which the client special-cases.
 *
 * Only the commands of the platform's Redis subset (`SUPPORTED_COMMANDS`, what the
 * embedded twin implements) are accepted, over either backend. So code that starts using
 * another command fails against real Redis in CI exactly as it does against the twin,
 * instead of working in one lane only; and nothing can block or change the state of the
 * one shared connection (SUBSCRIBE, BLPOP, SELECT, MULTI …).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { MemoryRedis, SUPPORTED_COMMANDS } from "./memory-redis.ts";
import { parseRedisUrl, RespClient, RespError, type RespValue } from "./resp.ts";

/** Something that runs Redis commands: the real server or the embedded twin. */
export interface RedisBackend {
  readonly kind: "redis" | "memory";
  /** Runs commands in order; error replies are returned in place. */
  pipeline(commands: string[][]): Promise<RespValue[]>;
  /** Runs commands atomically (MULTI/EXEC). */
  transaction(commands: string[][]): Promise<RespValue[]>;
  close(): void;
}

const ALLOWED = new Set(SUPPORTED_COMMANDS);

export function redisBackend(redisUrl: string): RedisBackend {
  const client = new RespClient(parseRedisUrl(redisUrl));
  return {
    kind: "redis",
    pipeline: (commands) => client.batch(commands),
    async transaction(commands) {
      const replies = await client.batch([["MULTI"], ...commands, ["EXEC"]]);
      const exec = replies[replies.length - 1];
      const queued = replies.slice(1, -1).find((r) => r instanceof RespError);
      if (queued) throw queued;
      if (exec instanceof RespError) throw exec;
      if (!Array.isArray(exec)) throw new RespError("EXECABORT Transaction discarded");
      return exec;
    },
    close: () => client.close(),
  };
}

export function memoryBackend(store = new MemoryRedis()): RedisBackend {
  const run = async (commands: string[][]) => commands.map((c) => store.execute(c));
  // The twin runs synchronously, so a batch is already atomic.
  return { kind: "memory", pipeline: run, transaction: run, close: () => {} };
}

function encode(value: RespValue, base64: boolean): unknown {
  if (value === null || typeof value === "number") return value;
  if (Array.isArray(value)) return value.map((v) => encode(v, base64));
  if (value instanceof RespError) return { error: value.message };
  if (typeof value === "string") {
    return base64 && value !== "OK" ? Buffer.from(value).toString("base64") : value;
  }
  return base64 ? value.toString("base64") : value.toString("utf8");
}

function isCommand(value: unknown): value is string[] {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((part) => typeof part === "string" || typeof part === "number" || typeof part === "boolean")
  );
}

function normalise(value: unknown): string[] {
  if (!isCommand(value)) throw new RespError("ERR a command must be a non-empty array of strings");
  const command = value.map(String);
  if (!ALLOWED.has((command[0] ?? "").toUpperCase())) {
    throw new RespError(
      `ERR unknown command '${command[0]}': not in the platform's Redis subset (infra/dev/memory-redis.ts)`,
    );
  }
  return command;
}

export interface UpstashAdapter {
  url: string;
  token: string;
  backend: RedisBackend;
  close(): Promise<void>;
}

export interface UpstashAdapterOptions {
  backend: RedisBackend;
  token: string;
  port?: number;
  host?: string;
}

/** Starts the adapter; resolves once it is listening. */
export async function startUpstashAdapter(options: UpstashAdapterOptions): Promise<UpstashAdapter> {
  const { backend, token } = options;
  const server = http.createServer(async (req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.method !== "POST") return reply(405, { error: "only POST is supported" });
    if (req.headers.authorization !== `Bearer ${token}`) return reply(401, { error: "Unauthorized" });
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    const path = (req.url ?? "/").split("?")[0];
    try {
      const body: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8") || "null");
      if (path === "/" || path === "") {
        const [result] = await backend.pipeline([normalise(body)]);
        if (result instanceof RespError) return reply(400, { error: result.message });
        return reply(200, { result: encode(result as RespValue, base64) });
      }
      if (path === "/pipeline" || path === "/multi-exec") {
        if (!Array.isArray(body) || body.length === 0) {
          return reply(400, { error: "ERR the body must be a non-empty array of commands" });
        }
        const commands = body.map(normalise);
        const results = path === "/pipeline" ? await backend.pipeline(commands) : await backend.transaction(commands);
        return reply(
          200,
          results.map((r) => (r instanceof RespError ? { error: r.message } : { result: encode(r, base64) })),
        );
      }
      return reply(404, { error: `unknown path ${path}` });
    } catch (error) {
      if (error instanceof SyntaxError) return reply(400, { error: "ERR the body is not valid JSON" });
      if (error instanceof RespError) return reply(400, { error: error.message });
      return reply(502, { error: `redis backend unavailable: ${(error as Error).message}` });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    backend,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      backend.close();
    },
  };
}
