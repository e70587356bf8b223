/**
 * @module The Hono app factory every host shares: request id, configuration, logger,
 * per-request dependencies, the access log line, and the one error handler.
 *
 * Each host (`api.`, `llm.`, …) is its own Hono app made here, so a slug host can never
 * reach a REST route and vice versa (upstream's path-first routing is not reproduced).
 */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { type Config, ConfigError, configFor } from "./env.ts";
import { type Deps, RequestDeps } from "./lib/deps.ts";
import { ApiError, type ErrorCode, errorResponse } from "./lib/errors.ts";
import { createLogger, errorFields, type Logger } from "./lib/log.ts";

export interface AppEnv {
  Bindings: Record<string, unknown>;
  Variables: {
    requestId: string;
    config: Config;
    log: Logger;
    deps: Deps;
  };
}

export type App = Hono<AppEnv>;

/** Maps statuses of errors raised by Hono itself (body parsing, limits) to our codes. */
const HTTP_EXCEPTION_CODES: Record<number, ErrorCode> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
  415: "unsupported_media_type",
  422: "validation_failed",
  429: "rate_limited",
  504: "gateway_timeout",
};

// Logs written before the config is known (or when it is invalid) use this logger.
const fallbackLog = createLogger("info");

/** How a host renders an `ApiError` (the one JSON shape, unless a protocol dictates another). */
export type ErrorRenderer = (error: ApiError, requestId: string) => Response;

/** Turns anything thrown into the host's error response, logging server-side faults. */
function toErrorResponse(
  error: unknown,
  requestId: string,
  log: Logger,
  render: ErrorRenderer = errorResponse,
): Response {
  if (error instanceof ApiError) {
    if (error.status >= 500) log.error("request failed", { code: error.code, detail: error.detail });
    return render(error, requestId);
  }
  if (error instanceof HTTPException) {
    const code = HTTP_EXCEPTION_CODES[error.status] ?? (error.status >= 500 ? "internal" : "bad_request");
    return render(new ApiError(code, error.message || "Bad request"), requestId);
  }
  if (error instanceof ConfigError) {
    log.error("invalid configuration", { issues: error.issues });
    return render(
      new ApiError("config_invalid", "The service is misconfigured; the operator has been told via the logs."),
      requestId,
    );
  }
  log.error("unhandled error", errorFields(error));
  return render(new ApiError("internal", "Internal server error"), requestId);
}

export interface HostAppOptions {
  /** Detail for requests no route matches. */
  notFound?: (method: string, path: string, url: URL) => string;
  /**
   * Renders errors in a protocol's own format (the registry's `{"errors": [...]}`);
   * default: the one JSON shape `{detail, code, request_id}`.
   */
  renderError?: ErrorRenderer;
}

export function createHostApp(options: HostAppOptions = {}): App {
  const app = new Hono<AppEnv>();

  app.use(async (c, next) => {
    const started = Date.now();
    const requestId = crypto.randomUUID();
    c.set("requestId", requestId);
    let log = fallbackLog.child({ request_id: requestId });
    c.set("log", log);
    const config = configFor(c.env);
    log = createLogger(config.LOG_LEVEL, { request_id: requestId });
    const deps = new RequestDeps(config);
    c.set("config", config);
    c.set("log", log);
    c.set("deps", deps);
    try {
      await next();
    } finally {
      c.executionCtx.waitUntil(deps.close().catch((error) => log.warn("closing db failed", errorFields(error))));
      const url = new URL(c.req.url);
      log.info("request", {
        method: c.req.method,
        host: url.hostname,
        path: url.pathname,
        status: c.res.status,
        duration_ms: Date.now() - started,
      });
    }
    // A WebSocket upgrade's 101 carries the socket and must pass through untouched.
    if (c.res.status !== 101) {
      try {
        c.res.headers.set("x-request-id", requestId);
      } catch {
        // Responses from fetch() or a Durable Object have immutable headers.
        c.res = new Response(c.res.body, c.res);
        c.res.headers.set("x-request-id", requestId);
      }
    }
  });

  const render = options.renderError ?? errorResponse;
  app.onError((error, c) =>
    toErrorResponse(error, c.get("requestId") ?? crypto.randomUUID(), c.get("log") ?? fallbackLog, render),
  );

  app.notFound((c) => {
    const url = new URL(c.req.url);
    const detail =
      options.notFound?.(c.req.method, url.pathname, url) ?? `No route for ${c.req.method} ${url.pathname}`;
    return render(new ApiError("not_found", detail), c.get("requestId") ?? crypto.randomUUID());
  });

  return app;
}

/** The error response for requests that fail before any host app runs. */
export function earlyErrorResponse(error: unknown): Response {
  const requestId = crypto.randomUUID();
  return toErrorResponse(error, requestId, fallbackLog.child({ request_id: requestId }));
}
