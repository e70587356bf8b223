/**
 * @module Miner sockets for the workers lane: connect to `socket.localhost` signed as the
 * miner CLI would (purpose `sockets`), read frames in order without losing any, and reach
 * the hub's RPC surface.
 */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { MinerHub } from "../../durable-objects/miner-hub.ts";
import { configFor } from "../../src/env.ts";
import { MINER_HUB_NAME } from "../../src/services/miner-events.ts";
import type { TestHotkey } from "../support/chutes-cli.ts";
import { type SignedRequest, sendSigned } from "./accounts.ts";

export const SOCKET_HOST = "socket.localhost";

export type Frame = { type: string; seq?: number | null; reason?: string; data?: Record<string, unknown> } & Record<
  string,
  unknown
>;

/** Every frame a socket receives, queued from the moment it is accepted. */
export class FrameQueue {
  readonly #frames: Frame[] = [];
  #wake: (() => void) | null = null;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(ws: WebSocket) {
    ws.addEventListener("message", (event) => {
      this.#frames.push(JSON.parse(String(event.data)) as Frame);
      this.#wake?.();
    });
    this.closed = new Promise((resolve) =>
      ws.addEventListener("close", (event) => resolve({ code: event.code, reason: event.reason })),
    );
  }

  /** The next `count` frames, in order; fails after `timeoutMs`. */
  async next(count = 1, timeoutMs = 5000): Promise<Frame[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.#frames.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`got ${this.#frames.length}/${count} frames in ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.#frames.splice(0, count);
  }

  /** Skips frames until one matches (other tests' events may be interleaved). */
  async until(match: (frame: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [frame] = await this.next(1, Math.max(deadline - Date.now(), 1));
      if (frame && match(frame)) return frame;
    }
  }

  /** Asserts nothing matching arrives within `ms`. */
  async none(match: (frame: Frame) => boolean, ms = 300): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    expect(this.#frames.filter(match)).toEqual([]);
  }
}

/** The upgrade request a miner sends: GET with `Upgrade: websocket`, signed with purpose `sockets`. */
export function socketRequest(path = "/", headers: Record<string, string> = {}): SignedRequest {
  return { method: "GET", path, purpose: "sockets", host: SOCKET_HOST, headers: { upgrade: "websocket", ...headers } };
}

export interface MinerSocket {
  ws: WebSocket;
  frames: FrameQueue;
  hello: Frame;
}

/** Connects `key` (a registered miner) and reads its hello frame. */
export async function connectMiner(
  key: TestHotkey,
  options: { since?: number; headers?: Record<string, string> } = {},
): Promise<MinerSocket> {
  const path = options.since === undefined ? "/" : `/?since=${options.since}`;
  const res = await sendSigned(key, socketRequest(path, options.headers));
  expect(res.status, res.status === 101 ? "" : await res.text()).toBe(101);
  const ws = res.webSocket;
  if (!ws) throw new Error("no WebSocket on the 101 response");
  ws.accept();
  const frames = new FrameQueue(ws);
  const [hello] = await frames.next();
  if (!hello) throw new Error("no hello frame");
  expect(hello).toMatchObject({ type: "hello", data: { hotkey: key.ss58 } });
  return { ws, frames, hello };
}

export function minerHub(): DurableObjectStub<MinerHub> {
  const namespace = configFor(env).MINER_HUB;
  return namespace.get(namespace.idFromName(MINER_HUB_NAME));
}

/** Events only: the frames publishing produces. */
export const isEvent =
  (reason: string, match: Record<string, unknown> = {}) =>
  (frame: Frame) =>
    frame.type === "event" &&
    frame.reason === reason &&
    Object.entries(match).every(([key, value]) => frame.data?.[key] === value);
