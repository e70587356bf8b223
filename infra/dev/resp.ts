/**
 * @module A minimal RESP2 client for the local Upstash adapter.
 *
 * Why not ioredis: its reply transformers turn HGETALL into an object, and the
 * Upstash REST protocol (and so `@upstash/redis`) expects Redis's raw flat
 * array. Speaking RESP ourselves keeps replies exactly as Redis sends them and
 * binary-safe (bulk strings stay Buffers until the adapter base64-encodes them).
 *
 * One TCP connection carries every command: Redis answers a connection's
 * commands in order, so a FIFO of pending callbacks is enough, and a batch
 * written with one `socket.write` (MULTI … EXEC) cannot be interleaved.
 */
import net from "node:net";

/** A reply as Redis sent it: bulk strings as Buffers, status replies as strings. */
export type RespValue = Buffer | string | number | null | RespValue[] | RespError;

/** An error reply (`-ERR …`). Returned as a value, not thrown, inside arrays. */
export class RespError extends Error {}

interface Pending {
  resolve: (value: RespValue) => void;
  reject: (error: Error) => void;
}

export interface RespClientOptions {
  host: string;
  port: number;
  password?: string;
  username?: string;
  db?: number;
}

/** Parses a `redis://[user:pass@]host:port[/db]` URL. */
export function parseRedisUrl(url: string): RespClientOptions {
  const parsed = new URL(url);
  if (parsed.protocol !== "redis:") {
    throw new Error(`REDIS_URL must start with redis:// (got ${parsed.protocol})`);
  }
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : undefined;
  return {
    host: parsed.hostname || "127.0.0.1",
    port: parsed.port ? Number(parsed.port) : 6379,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    db: Number.isInteger(db) ? db : undefined,
  };
}

export class RespClient {
  #socket: net.Socket | null = null;
  #connecting: Promise<net.Socket> | null = null;
  #pending: Pending[] = [];
  #buffer: Buffer = Buffer.alloc(0);
  readonly #options: RespClientOptions;

  constructor(options: RespClientOptions) {
    this.#options = options;
  }

  /** Sends one command and resolves with its reply (error replies reject). */
  async command(args: readonly (string | Buffer)[]): Promise<RespValue> {
    const [reply] = await this.batch([args]);
    if (reply instanceof RespError) throw reply;
    return reply as RespValue;
  }

  /**
   * Sends several commands in one write and resolves with every reply in order;
   * error replies are returned in place so a pipeline can report them per command.
   */
  async batch(commands: readonly (readonly (string | Buffer)[])[]): Promise<RespValue[]> {
    const socket = await this.#connect();
    const replies = commands.map(
      () =>
        new Promise<RespValue>((resolve, reject) => {
          this.#pending.push({ resolve, reject });
        }),
    );
    socket.write(Buffer.concat(commands.map(encodeCommand)));
    return Promise.all(replies);
  }

  close(): void {
    this.#socket?.destroy();
    this.#socket = null;
  }

  #connect(): Promise<net.Socket> {
    if (this.#socket) return Promise.resolve(this.#socket);
    if (this.#connecting) return this.#connecting;
    this.#connecting = new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect(this.#options.port, this.#options.host);
      socket.setNoDelay(true);
      socket.once("connect", async () => {
        this.#socket = socket;
        this.#connecting = null;
        try {
          const setup: string[][] = [];
          if (this.#options.password) {
            setup.push(
              this.#options.username
                ? ["AUTH", this.#options.username, this.#options.password]
                : ["AUTH", this.#options.password],
            );
          }
          if (this.#options.db !== undefined) setup.push(["SELECT", String(this.#options.db)]);
          if (setup.length > 0) {
            const replies = await this.batch(setup);
            const failed = replies.find((r) => r instanceof RespError);
            if (failed) throw failed;
          }
          resolve(socket);
        } catch (error) {
          reject(error as Error);
        }
      });
      socket.on("data", (chunk) => this.#onData(chunk));
      socket.once("error", (error) => {
        this.#connecting = null;
        reject(error);
        this.#failAll(error);
      });
      socket.once("close", () => {
        this.#socket = null;
        this.#failAll(new Error("redis connection closed"));
      });
    });
    return this.#connecting;
  }

  #failAll(error: Error): void {
    const pending = this.#pending;
    this.#pending = [];
    this.#buffer = Buffer.alloc(0);
    for (const p of pending) p.reject(error);
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      const parsed = parseReply(this.#buffer, 0);
      if (!parsed) return;
      this.#buffer = this.#buffer.subarray(parsed.end);
      const next = this.#pending.shift();
      next?.resolve(parsed.value);
    }
  }
}

function encodeCommand(args: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === "string" ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
}

/** Parses one reply starting at `offset`; null when the buffer holds only part of it. */
function parseReply(buf: Buffer, offset: number): { value: RespValue; end: number } | null {
  const lineEnd = buf.indexOf("\r\n", offset);
  if (lineEnd < 0) return null;
  const type = String.fromCharCode(buf[offset] ?? 0);
  const line = buf.toString("utf8", offset + 1, lineEnd);
  const afterLine = lineEnd + 2;
  switch (type) {
    case "+":
      return { value: line, end: afterLine };
    case "-":
      return { value: new RespError(line), end: afterLine };
    case ":":
      return { value: Number(line), end: afterLine };
    case "$": {
      const length = Number(line);
      if (length < 0) return { value: null, end: afterLine };
      if (buf.length < afterLine + length + 2) return null;
      return { value: buf.subarray(afterLine, afterLine + length), end: afterLine + length + 2 };
    }
    case "*": {
      const count = Number(line);
      if (count < 0) return { value: null, end: afterLine };
      const items: RespValue[] = [];
      let cursor = afterLine;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, cursor);
        if (!item) return null;
        items.push(item.value);
        cursor = item.end;
      }
      return { value: items, end: cursor };
    }
    default:
      throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}
