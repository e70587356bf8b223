/**
 * @module The public events hub: anyone may subscribe to the platform's public feed
 * (instances appearing, bounties changing) on `events.{domain}`; the API publishes
 * through RPC. Subscribers only ever receive public events, so no authentication is
 * needed to listen.
 */
import { DurableObject } from "cloudflare:workers";
import { acceptUpgrade, closeQuietly, sendJson } from "./sockets.ts";

export interface PublicEvent {
  reason: string;
  data: Record<string, unknown>;
}

export class EventsHub extends DurableObject {
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    return acceptUpgrade(this.ctx, ["subscriber"], { connectedAt: Date.now() }).response;
  }

  /** Sends an event to every subscriber (RPC); returns how many sockets got it. */
  async publish(event: PublicEvent): Promise<number> {
    let delivered = 0;
    for (const ws of this.ctx.getWebSockets("subscriber")) {
      if (sendJson(ws, { type: "event", reason: event.reason, data: event.data })) delivered++;
    }
    return delivered;
  }

  override async webSocketMessage(ws: WebSocket): Promise<void> {
    // The feed is one-way; a subscriber has nothing to say.
    sendJson(ws, { type: "error", reason: "the events feed is read-only" });
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    closeQuietly(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    closeQuietly(ws, 1011, "socket error");
  }
}
