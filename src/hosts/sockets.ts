/**
 * @module `socket.{domain}` / `ws.{domain}` (miners) and `events.{domain}` (public feed):
 * WebSocket upgrades handed to their Durable Objects.
 */
import type { Context } from "hono";
import { type AppEnv, createHostApp } from "../app.ts";
import { ApiError } from "../lib/errors.ts";

/** The single hub instance every miner connects to. */
export const MINER_HUB_NAME = "miners";
export const EVENTS_HUB_NAME = "events";

function requireUpgrade(c: Context<AppEnv>): void {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError("upgrade_required", "This endpoint speaks WebSocket: connect with `Upgrade: websocket`.");
  }
}

export const socketHost = createHostApp().get("/", (c) => {
  requireUpgrade(c);
  const hub = c.var.config.MINER_HUB;
  return hub.get(hub.idFromName(MINER_HUB_NAME)).fetch(c.req.raw);
});

export const eventsHost = createHostApp().get("/", (c) => {
  requireUpgrade(c);
  const hub = c.var.config.EVENTS_HUB;
  return hub.get(hub.idFromName(EVENTS_HUB_NAME)).fetch(c.req.raw);
});
