/**
 * @module The Worker's entry point: host-first dispatch to the host apps, plus the
 * Durable Object classes wrangler must find in the main module.
 */
import { earlyErrorResponse } from "./app.ts";
import { configFor } from "./env.ts";
import { classifyHost } from "./hosts/classify.ts";
import { HOST_APPS } from "./hosts/index.ts";

export { ChuteRouter } from "../durable-objects/chute-router.ts";
export { EventsHub } from "../durable-objects/events-hub.ts";
export { MinerHub } from "../durable-objects/miner-hub.ts";

export default {
  async fetch(request, env, ctx): Promise<Response> {
    let kind: keyof typeof HOST_APPS;
    try {
      const config = configFor(env);
      kind = classifyHost(new URL(request.url).hostname, {
        baseDomain: config.BASE_DOMAIN,
        loopbackIsApi: config.ENVIRONMENT === "development" || config.ENVIRONMENT === "test",
      }).kind;
    } catch (error) {
      return earlyErrorResponse(error);
    }
    return HOST_APPS[kind].fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Record<string, unknown>>;
