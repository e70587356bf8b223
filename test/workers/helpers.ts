/**
 * @module Helpers for tests that run inside workerd (the workers lane).
 */
import { exports } from "cloudflare:workers";
import { expect } from "vitest";

/** Sends a request to the Worker as if it arrived for `host` (e.g. `api.localhost`). */
export function callHost(host: string, path: string, init?: RequestInit): Promise<Response> {
  return exports.default.fetch(new Request(`http://${host}${path}`, init));
}

/** Asserts the one error shape and returns its body. */
export async function expectError(
  res: Response,
  status: number,
  code: string,
): Promise<{ detail: string; code: string; request_id: string }> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toBe("application/json");
  const body = (await res.json()) as { detail: string; code: string; request_id: string };
  expect(body).toMatchObject({ code, detail: expect.any(String), request_id: expect.any(String) });
  expect(body.detail.length).toBeGreaterThan(0);
  expect(res.headers.get("x-request-id")).toBe(body.request_id);
  return body;
}

/** Collects the next `count` JSON frames from a socket, failing after `timeoutMs`. */
export function nextFrames(ws: WebSocket, count: number, timeoutMs = 5000): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const frames: Record<string, unknown>[] = [];
    const timer = setTimeout(
      () => reject(new Error(`got ${frames.length}/${count} frames in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onMessage = (event: MessageEvent) => {
      frames.push(JSON.parse(String(event.data)) as Record<string, unknown>);
      if (frames.length === count) {
        clearTimeout(timer);
        ws.removeEventListener("message", onMessage);
        resolve(frames);
      }
    };
    ws.addEventListener("message", onMessage);
  });
}
