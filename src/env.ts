/**
 * @module The Worker's configuration: every binding and variable, validated once per
 * isolate with zod. Handlers never read `env` directly; they get the parsed `Config`.
 *
 * An invalid configuration is an operator error, not a client one: every request then
 * answers 500 `config_invalid` naming the variables at fault (never their values), and
 * the log carries the same list.
 */
import { z } from "zod";

/** A hostname such as `chutes.ai` or `localhost`. */
const hostname = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, {
    message: "must be a hostname such as chutes.ai or localhost",
  });

const binding = <T>(name: string, probe: string) =>
  z.custom<T>((value) => typeof value === "object" && value !== null && probe in value, {
    message: `${name} binding is missing`,
  });

export const envSchema = z.object({
  ENVIRONMENT: z.enum(["development", "test", "staging", "production"]).default("development"),
  /** Hosts are `{api,llm,socket,ws,events,registry,<slug>}.{BASE_DOMAIN}`. */
  BASE_DOMAIN: hostname.default("localhost"),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, { message: "must be a postgres:// connection string" }),
  /**
   * Local only: `host:port/path` of the ws proxy in infra/dev that stands in for Neon's.
   * Unset in production, where the driver talks to Neon directly.
   */
  LOCAL_WSPROXY: z
    .string()
    .regex(/^[^/\s]+:\d+(\/\S*)?$/, { message: "must look like 127.0.0.1:5433/v1" })
    .optional(),
  UPSTASH_REDIS_REST_URL: z.url({ protocol: /^https?$/ }),
  UPSTASH_REDIS_REST_TOKEN: z.string().min(1),
  BUCKET: binding<R2Bucket>("BUCKET", "put"),
  MINER_HUB: binding<DurableObjectNamespace>("MINER_HUB", "idFromName"),
  CHUTE_ROUTER: binding<DurableObjectNamespace>("CHUTE_ROUTER", "idFromName"),
  EVENTS_HUB: binding<DurableObjectNamespace>("EVENTS_HUB", "idFromName"),
});

export type Config = z.infer<typeof envSchema>;

export class ConfigError extends Error {
  readonly issues: string[];
  constructor(issues: string[]) {
    super(`invalid configuration: ${issues.join("; ")}`);
    this.issues = issues;
  }
}

/** Parses and checks `env`; throws `ConfigError` listing every problem. */
export function parseConfig(env: unknown): Config {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`));
  }
  const config = result.data;
  if ((config.ENVIRONMENT === "production" || config.ENVIRONMENT === "staging") && config.LOCAL_WSPROXY) {
    throw new ConfigError(["LOCAL_WSPROXY: is a local development setting and must not be set in production"]);
  }
  return config;
}

// The env object of an isolate is the same object for every request, so the parse is
// done once per isolate; the WeakMap holds no I/O and dies with the isolate.
const parsed = new WeakMap<object, Config | ConfigError>();

/** `parseConfig`, memoised per env object (that is, once per isolate). */
export function configFor(env: object): Config {
  let cached = parsed.get(env);
  if (!cached) {
    try {
      cached = parseConfig(env);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      cached = error;
    }
    parsed.set(env, cached);
  }
  if (cached instanceof ConfigError) throw cached;
  return cached;
}
