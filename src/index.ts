/**
 * @module The Worker's entry point: host-first dispatch to the host apps, the cron
 * handler (src/cron.ts), plus the Durable Object classes wrangler must find in the main
 * module.
 */
import { earlyErrorResponse } from "./app.ts";
import { runCronJobs } from "./cron.ts";
import { type Config, configFor } from "./env.ts";
import { classifyUrl } from "./hosts/classify.ts";
import { HOST_APPS } from "./hosts/index.ts";
import { createLogger, errorFields } from "./lib/log.ts";

export { BuildLog } from "../durable-objects/build-log.ts";
export { ChuteRouter } from "../durable-objects/chute-router.ts";
export { EventsHub } from "../durable-objects/events-hub.ts";
export { Metering } from "../durable-objects/metering.ts";
export { MinerHub } from "../durable-objects/miner-hub.ts";
export { Verifier } from "../durable-objects/verifier.ts";

export default {
  async fetch(request, env, ctx): Promise<Response> {
    let kind: keyof typeof HOST_APPS;
    try {
      const config = configFor(env);
      kind = classifyUrl(new URL(request.url), {
        baseDomain: config.BASE_DOMAIN,
        loopbackIsApi: config.ENVIRONMENT === "development" || config.ENVIRONMENT === "test",
      }).kind;
    } catch (error) {
      return earlyErrorResponse(error);
    }
    return HOST_APPS[kind].fetch(request, env, ctx);
  },

  async scheduled(controller, env, ctx): Promise<void> {
    const fields = { cron: controller.cron, scheduled_time: new Date(controller.scheduledTime).toISOString() };
    let config: Config;
    try {
      config = configFor(env);
    } catch (error) {
      createLogger("error").error("invalid configuration", { ...fields, ...errorFields(error) });
      throw error;
    }
    const log = createLogger(config.LOG_LEVEL, fields);
    const outcomes = await runCronJobs({
      cron: controller.cron,
      scheduledTime: new Date(controller.scheduledTime),
      config,
      log,
      waitUntil: (promise) => ctx.waitUntil(promise),
    });
    const failed = outcomes.filter((outcome) => !outcome.ok).map((outcome) => outcome.job);
    // Rethrown so the platform records the invocation as failed (after every job ran).
    if (failed.length > 0) throw new Error(`cron "${controller.cron}": ${failed.join(", ")} failed`);
  },
} satisfies ExportedHandler<Record<string, unknown>>;
