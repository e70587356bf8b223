/**
 * @module The dev TAO price feed: a loopback HTTP server answering in the shapes of the
 * two sources the Worker reads (src/services/fmv.ts), so `npm start` and the tests price
 * payments without the internet.
 *
 * - `GET /kraken/0/public/Ticker?pair=TAOUSD` — Kraken's Ticker shape;
 * - `GET /coingecko/api/v3/simple/price?ids=bittensor&vs_currencies=usd` — CoinGecko's;
 * - `POST /price {"usd": 420.5}` — sets the price both answer (default `DEV_TAO_PRICE`, 400).
 *
 * Tests steer one request at a time through the query string, so parallel tests never
 * share state: `usd=` answers that price, `status=` answers that HTTP status, `hits=`
 * counts requests under a token (`GET /hits/{token}`).
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface PriceFeed {
  url: string;
  /** The Kraken-shaped and CoinGecko-shaped URLs, as FMV_PRIMARY_URL / FMV_FALLBACK_URL. */
  primaryUrl: string;
  fallbackUrl: string;
  close(): Promise<void>;
}

export const KRAKEN_PATH = "/kraken/0/public/Ticker?pair=TAOUSD";
export const COINGECKO_PATH = "/coingecko/api/v3/simple/price?ids=bittensor&vs_currencies=usd";

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function startPriceFeed(options: { port?: number; usd?: number } = {}): Promise<PriceFeed> {
  let usd = options.usd ?? (Number(process.env.DEV_TAO_PRICE) || 400);
  const hits = new Map<string, number>();

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://price-feed");
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const token = url.searchParams.get("hits");
    if (token) hits.set(token, (hits.get(token) ?? 0) + 1);
    const counted = /^\/hits\/([^/]+)$/.exec(url.pathname);
    if (req.method === "GET" && counted) return reply(200, { hits: hits.get(counted[1] ?? "") ?? 0 });
    if (req.method === "POST" && url.pathname === "/price") {
      readBody(req).then(
        (text) => {
          const value = Number((JSON.parse(text || "{}") as { usd?: unknown }).usd);
          if (!Number.isFinite(value) || value <= 0) return reply(422, { detail: "usd must be a positive number" });
          usd = value;
          reply(200, { usd });
        },
        () => reply(400, { detail: "unreadable body" }),
      );
      return;
    }
    const status = Number(url.searchParams.get("status") ?? 200);
    if (status !== 200) return reply(status, { error: ["EService:Unavailable"] });
    const price = Number(url.searchParams.get("usd") ?? usd);
    if (url.pathname === "/kraken/0/public/Ticker") {
      const text = price.toString();
      return reply(200, {
        error: [],
        result: { TAOUSD: { a: [text, "1", "1.0"], b: [text, "1", "1.0"], c: [text, "0.5"] } },
      });
    }
    if (url.pathname === "/coingecko/api/v3/simple/price") return reply(200, { bittensor: { usd: price } });
    reply(404, { detail: `no route for ${req.method} ${url.pathname}` });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", resolve);
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    primaryUrl: `${url}${KRAKEN_PATH}`,
    fallbackUrl: `${url}${COINGECKO_PATH}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
