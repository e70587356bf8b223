/**
 * @module Helpers shared by the WebSocket Durable Objects.
 */

/**
 * Closes a socket without throwing. Under the hibernation API the object must answer a
 * peer's close or the peer waits in CLOSING and reports 1006; but 1005 ("no status",
 * what a bare `ws.close()` produces) and 1006 are reserved and throw when echoed, and a
 * socket that is already closed throws too.
 */
export function closeQuietly(ws: WebSocket, code = 1000, reason = ""): void {
  const safeCode = code === 1005 || code === 1006 || code === 1015 || code < 1000 || code > 4999 ? 1000 : code;
  try {
    ws.close(safeCode, reason.slice(0, 120));
  } catch {
    // Already closed or closing: nothing to do.
  }
}

/** Sends a text frame, dropping it if the socket has gone away meanwhile. */
export function sendText(ws: WebSocket, text: string): boolean {
  try {
    ws.send(text);
    return true;
  } catch {
    return false;
  }
}

/** Sends a value as a JSON text frame, dropping it if the socket has gone away meanwhile. */
export function sendJson(ws: WebSocket, frame: unknown): boolean {
  return sendText(ws, JSON.stringify(frame));
}

/** Parses a text frame as a JSON object, or returns null. */
export function parseFrame(message: string | ArrayBuffer): Record<string, unknown> | null {
  if (typeof message !== "string") return null;
  try {
    const value: unknown = JSON.parse(message);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/** Accepts an upgrade request into `ctx` with the hibernation API; returns the 101. */
export function acceptUpgrade(
  ctx: DurableObjectState,
  tags: string[],
  attachment: unknown,
): { response: Response; server: WebSocket } {
  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  ctx.acceptWebSocket(server, tags);
  server.serializeAttachment(attachment);
  return { response: new Response(null, { status: 101, webSocket: client }), server };
}
