/**
 * @module `socket.{domain}` / `ws.{domain}` (miners) and `events.{domain}` (public feed):
 * WebSocket upgrades handed to their Durable Objects.
 *
 * A miner authenticates in the upgrade request itself (`X-Chutes-*` headers signed with
 * purpose `sockets`, by a hotkey registered on the subnet), so an unauthenticated client
 * gets a 401 and never a socket. The hub learns the hotkey from a header the Worker sets
 * here, after dropping any copy the client sent.
 */
import type { Context } from "hono";
import { MINER_HOTKEY_HEADER } from "../../durable-objects/miner-hub.ts";
import { type AppEnv, createHostApp } from "../app.ts";
import { requireMiner } from "../lib/auth.ts";
import { ApiError } from "../lib/errors.ts";
import { HOTKEY_HEADER, NONCE_HEADER, SIGNATURE_HEADER } from "../lib/signatures.ts";
import { MINER_HUB_NAME } from "../services/miner-events.ts";

export const EVENTS_HUB_NAME = "events";

async function requireUpgrade(c: Context<AppEnv>, next: () => Promise<void>): Promise<void> {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError("upgrade_required", "This endpoint speaks WebSocket: connect with `Upgrade: websocket`.");
  }
  await next();
}

export const socketHost = createHostApp().get("/", requireUpgrade, requireMiner({ purpose: "sockets" }), (c) => {
  const headers = new Headers(c.req.raw.headers);
  for (const name of [HOTKEY_HEADER, NONCE_HEADER, SIGNATURE_HEADER]) headers.delete(name);
  headers.set(MINER_HOTKEY_HEADER, c.var.miner.hotkey);
  const hub = c.var.config.MINER_HUB;
  return hub.get(hub.idFromName(MINER_HUB_NAME)).fetch(new Request(c.req.raw.url, { headers }));
});

export const eventsHost = createHostApp().get("/", requireUpgrade, (c) => {
  const hub = c.var.config.EVENTS_HUB;
  return hub.get(hub.idFromName(EVENTS_HUB_NAME)).fetch(c.req.raw);
});
