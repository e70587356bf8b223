/**
 * @module The miner hub: one Durable Object holding every miner's WebSocket, so events
 * fan out from a single writer.
 *
 * It uses the hibernation API: sockets stay open while the object sleeps, ping frames
 * are answered by the runtime itself (`setWebSocketAutoResponse`) without waking it,
 * and everything it needs about a socket lives in the socket's attachment (kept under
 * the 16 KiB limit), so nothing is lost when the in-memory object is evicted.
 *
 * The miner protocol (authentication in the upgrade, sequenced events, resume) is in
 * docs/protocols.md; this class is its transport.
 */
import { DurableObject } from "cloudflare:workers";
import { acceptUpgrade, closeQuietly, parseFrame, sendJson } from "./sockets.ts";

interface MinerAttachment {
  connectedAt: number;
}

export const PING_FRAME = JSON.stringify({ type: "ping" });
export const PONG_FRAME = JSON.stringify({ type: "pong" });

export class MinerHub extends DurableObject {
  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
  }

  /** Accepts a WebSocket upgrade forwarded by the Worker. */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    const attachment: MinerAttachment = { connectedAt: Date.now() };
    const { response, server } = acceptUpgrade(this.ctx, ["miner"], attachment);
    sendJson(server, { type: "hello", seq: 0, data: { connected_at: attachment.connectedAt } });
    return response;
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const frame = parseFrame(message);
    if (!frame || typeof frame.type !== "string") {
      sendJson(ws, { type: "error", reason: "frames must be JSON objects with a string `type`" });
      return;
    }
    if (frame.type === "ping") {
      sendJson(ws, { type: "pong", seq: frame.seq ?? null });
      return;
    }
    sendJson(ws, { type: "error", reason: `unknown frame type ${JSON.stringify(frame.type).slice(0, 64)}` });
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    closeQuietly(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    closeQuietly(ws, 1011, "socket error");
  }

  /** How many miner sockets are open (RPC). */
  async connectionCount(): Promise<number> {
    return this.ctx.getWebSockets("miner").length;
  }
}
