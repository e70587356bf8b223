/**
 * @module The Redis client: `@upstash/redis` over REST, the only way the platform talks
 * to Redis. Redis holds loss-tolerant state only (replay cache, rate limits, hot
 * lookups); losing it must never lose money or records.
 *
 * Locally the REST endpoint is infra/dev/upstash-adapter.ts over a real Redis or the
 * embedded twin, so the same client code runs in dev, tests and production.
 */
import { Redis } from "@upstash/redis/cloudflare";
import type { Config } from "../env.ts";

export type { Redis };

export function openRedis(config: Pick<Config, "UPSTASH_REDIS_REST_URL" | "UPSTASH_REDIS_REST_TOKEN">): Redis {
  return new Redis({
    url: config.UPSTASH_REDIS_REST_URL,
    token: config.UPSTASH_REDIS_REST_TOKEN,
    // The client's default retries five times with exponential backoff; on a request
    // path that burns seconds during an outage. One retry covers a dropped connection.
    retry: { retries: 1, backoff: () => 50 },
    enableTelemetry: false,
  });
}
