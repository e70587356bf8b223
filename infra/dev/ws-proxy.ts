/**
 * @module The local stand-in for Neon's WebSocket proxy.
 *
 * In production `@neondatabase/serverless` opens a WebSocket to Neon, which pipes it to
 * Postgres. Locally the Worker (and tests) set `neonConfig.wsProxy` to this server: it
 * accepts `ws://127.0.0.1:<port>/v1?address=<host>:<port>` and pipes the socket to that
 * Postgres over TCP, byte for byte, which is all Neon's own proxy does. So the code under
 * test is the production driver, talking to a real Postgres.
 *
 * Only loopback targets are allowed: this is a dev tool, not an open relay.
 *
 * On the client's Terminate message the proxy ends the TCP side itself. A real Postgres
 * closes the connection on Terminate, and the driver waits for that rather than closing
 * its WebSocket; PGlite's socket server ignores Terminate, so without this every
 * per-request pool would leave a connection open until the server refused new ones.
 */

import type { AddressInfo } from "node:net";
import net from "node:net";
import { createWebSocketStream, WebSocketServer } from "ws";

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

/** Startup-phase request codes after which another untyped startup message follows. */
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

/**
 * Follows the frontend message framing of one connection and calls `onTerminate` once the
 * client has sent Terminate (`X`). Startup-phase messages carry no type byte.
 */
export function terminateWatcher(onTerminate: () => void): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0);
  let startup = true;
  let done = false;
  return (chunk) => {
    if (done) return;
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      const header = startup ? 4 : 5;
      if (pending.length < header) return;
      const length = pending.readInt32BE(startup ? 0 : 1);
      const total = startup ? length : length + 1;
      if (length < 4 || pending.length < total) return;
      if (startup) {
        const code = pending.readInt32BE(4);
        startup = code === SSL_REQUEST || code === GSSENC_REQUEST;
      } else if (pending[0] === 0x58) {
        done = true;
        onTerminate();
        return;
      }
      pending = pending.subarray(total);
    }
  };
}

export interface WsProxy {
  /** The value for `LOCAL_WSPROXY`: host, port and path, without a scheme. */
  address: string;
  close(): Promise<void>;
}

export async function startWsProxy(options: { port?: number } = {}): Promise<WsProxy> {
  const server = new WebSocketServer({ host: "127.0.0.1", port: options.port ?? 0, path: "/v1" });
  server.on("connection", (socket, request) => {
    const target = new URL(request.url ?? "", "http://proxy").searchParams.get("address") ?? "";
    const split = target.lastIndexOf(":");
    const host = target.slice(0, split);
    const port = Number(target.slice(split + 1));
    if (!LOOPBACK.has(host) || !Number.isInteger(port) || port <= 0) {
      socket.close(1008, "only loopback Postgres targets are allowed");
      return;
    }
    const tcp = net.connect(port, host.replace(/^\[|\]$/g, ""));
    tcp.setNoDelay(true);
    const ws = createWebSocketStream(socket);
    const teardown = () => {
      tcp.destroy();
      ws.destroy();
    };
    tcp.on("error", teardown);
    ws.on("error", teardown);
    // After the pipe has written the chunk carrying Terminate, end the TCP side.
    ws.on(
      "data",
      terminateWatcher(() => setImmediate(() => tcp.end())),
    );
    ws.pipe(tcp).pipe(ws);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("listening", () => resolve());
    server.once("error", reject);
  });
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}/v1`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of server.clients) client.terminate();
        server.close(() => resolve());
      }),
  };
}
