/**
 * Black-box checks of a real `npm start`: the launcher, wrangler dev, the Worker, its
 * Durable Objects and the local services, reached over HTTP and WebSocket like a client.
 */

import pg from "pg";
import { describe, expect, inject, it } from "vitest";
import WebSocket from "ws";
import { withDatabase } from "../../infra/dev/database.ts";
import { metagraphNodes } from "../../src/db/schema.ts";
import { cliHeaders, randomHotkey } from "../support/chutes-cli.ts";
import { hostRequest } from "../support/http.ts";

const base = inject("platformUrl");
const port = new URL(base).port;

describe("npm start", () => {
  it("answers /ping with pong on api.localhost, 127.0.0.1 and localhost", async () => {
    for (const host of ["api.localhost", "127.0.0.1", "localhost"]) {
      const res = await hostRequest(base, host, "/ping");
      expect(res.status, host).toBe(200);
      expect(res.headers["content-type"]).toMatch(/^application\/json/);
      expect(res.json()).toEqual({ message: "pong" });
    }
  });

  it("dispatches on the host name that reached it", async () => {
    const chute = await hostRequest(base, "alice-demo.localhost", "/ping");
    expect(chute.status).toBe(404);
    expect(chute.json()).toMatchObject({ code: "not_found", detail: expect.stringContaining("alice-demo.localhost") });

    const unknown = await hostRequest(base, "a.b.localhost", "/");
    expect(unknown.status).toBe(404);
    expect(unknown.json()).toMatchObject({ code: "not_found", detail: expect.stringContaining("Unknown host") });
  });

  it("sends every error as JSON with a request id", async () => {
    const res = await hostRequest(base, "api.localhost", "/nothing-here");
    expect(res.status).toBe(404);
    expect(res.headers["content-type"]).toBe("application/json");
    const body = res.json<{ request_id: string }>();
    expect(res.headers["x-request-id"]).toBe(body.request_id);
  });

  it("refuses an unauthenticated miner socket with 401 JSON before upgrading", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { host: `socket.localhost:${port}` } });
    const refused = await new Promise<{ status: number; type: string | undefined }>((resolve, reject) => {
      ws.on("unexpected-response", (_req, res) =>
        resolve({ status: res.statusCode ?? 0, type: res.headers["content-type"] }),
      );
      ws.on("open", () => reject(new Error("an unsigned miner socket was accepted")));
      ws.on("error", () => {});
    });
    expect(refused).toEqual({ status: 401, type: "application/json" });
  });

  it("upgrades a registered miner's signed socket into the hub and answers pings", async () => {
    const key = randomHotkey();
    await withDatabase(inject("platformDatabaseUrl"), (db) =>
      db.insert(metagraphNodes).values({ hotkey: key.ss58, netuid: 64, nodeId: 1, coldkey: key.ss58, checksum: "e2e" }),
    );
    const headers = await cliHeaders(key, { purpose: "sockets" });
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { ...headers, host: `socket.localhost:${port}` } });
    const frames: Record<string, unknown>[] = [];
    const got = (n: number) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${frames.length} frames`)), 5000);
        const check = () => {
          if (frames.length >= n) {
            clearTimeout(timer);
            resolve();
          }
        };
        ws.on("message", (data) => {
          frames.push(JSON.parse(String(data)));
          check();
        });
        check();
      });
    await got(1);
    expect(frames[0]).toMatchObject({ type: "hello", data: { hotkey: key.ss58 } });
    ws.send(JSON.stringify({ type: "ping", seq: 1 }));
    await got(2);
    expect(frames[1]).toEqual({ type: "pong", seq: 1 });
    const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
    ws.close(1000, "bye");
    expect(await closed).toBe(1000);
  });
});

describe("npm start's dev chain", () => {
  it("registers a simulated miner's hotkey and syncs it into the metagraph at once", async () => {
    const devChain = inject("devChainUrl");
    // A valid ss58 hotkey (sr25519 of seed 0x03…03) that the seed metagraph does not hold.
    const hotkey = "5FJ4gu9eVX6DG4qYi1hxkUgu1yaTm1CnQ4MiiZPjPVaXiATo";
    const res = await fetch(`${devChain}/neurons`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ netuid: 64, hotkey, coldkey: hotkey }),
    });
    expect(res.status).toBe(200);
    // The launcher fired the Worker's cron at once: "ok", or "running" while wrangler dev
    // keeps the invocation open (embedded Postgres; docs/architecture.md).
    const body = (await res.json()) as { hotkey: string; uid: number; sync: string };
    expect(body).toMatchObject({ hotkey, uid: 3 });
    expect(["ok", "running"]).toContain(body.sync);
    const databaseUrl = inject("platformDatabaseUrl");
    if (databaseUrl) {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        const query = () =>
          client.query("select node_id from metagraph_nodes where hotkey = $1 and netuid = 64", [hotkey]);
        for (let i = 0; i < 50 && (await query()).rows.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
        expect((await query()).rows).toEqual([{ node_id: 3 }]);
      } finally {
        await client.end();
      }
    }
  });
});
