/**
 * @module Invocation routes (issue 7): which chute and cord a request is for, and who is
 * asking; src/services/gateway.ts does the rest.
 *
 * - `{slug}.{domain}/{path}`: the chute with that slug, the cord whose public path and
 *   method match (the JSON body's `stream` picks between a stream and a non-stream cord);
 * - `api.{domain}` `POST /chutes/{chute_id}/{path}`: the SDK-style call of the cord whose
 *   `path` is `/{path}`;
 * - `llm.{domain}`: `GET /v1/models` (the vLLM chutes the caller may invoke) and
 *   `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings` routed by `model`.
 *
 * Unknown slugs, chutes, paths and models are 404s with a detail; a private chute the
 * caller may not use is a 404 too (its existence is not revealed).
 */
import type { Context } from "hono";
import { Hono } from "hono";
import type { AppEnv } from "../app.ts";
import { authenticateCaller, authorizeInvoke, presentedApiKeyIds } from "../lib/auth.ts";
import { ApiError } from "../lib/errors.ts";
import { rawBody } from "../lib/validation.ts";
import type { Cord } from "../schemas/cords.ts";
import { type AdmissionReads, readAdmission, warmAdmission } from "../services/admission.ts";
import { isolateLedger } from "../services/admission-ledger.ts";
import { findCord, findPublicCord } from "../services/cords.ts";
import { invokeChute } from "../services/gateway.ts";
import {
  canInvoke,
  chuteById,
  chuteByModel,
  chuteBySlug,
  type GatewayChute,
  llmChutes,
} from "../services/gateway-chutes.ts";

/** Largest invocation body (prompts, base64 images). */
export const INVOKE_MAX_BODY_BYTES = 10 * 1024 * 1024;

const notFound = (detail: string) => new ApiError("not_found", detail);

/** The request's body as JSON, or null when it is not a JSON object. */
function jsonObject(bytes: Uint8Array): Record<string, unknown> | null {
  if (bytes.length === 0) return null;
  try {
    const value = JSON.parse(new TextDecoder().decode(bytes));
    return value && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

/**
 * vLLM streams must end with token usage (so the final chunk can carry usage and cost,
 * and the invocation its metrics): `stream_options.include_usage` is forced on, as upstream.
 */
function prepareBody(chute: GatewayChute, cord: Cord, bytes: Uint8Array, json: Record<string, unknown> | null) {
  if (chute.standardTemplate !== "vllm" || !cord.stream || !json) return bytes;
  const options = json.stream_options && typeof json.stream_options === "object" ? json.stream_options : {};
  return new TextEncoder().encode(JSON.stringify({ ...json, stream_options: { ...options, include_usage: true } }));
}

async function call(
  c: Context<AppEnv>,
  /** The chute, when known before authentication (its admission reads then overlap the auth lookup). */
  known: GatewayChute | null,
  resolve: (
    auth: Awaited<ReturnType<typeof authenticateCaller>>,
    body: Uint8Array,
    json: Record<string, unknown> | null,
  ) => Promise<{ chute: GatewayChute; cord: Cord }>,
): Promise<Response> {
  const started = Date.now();
  const body = await rawBody(c, INVOKE_MAX_BODY_BYTES);
  const { config, deps } = c.var;
  // An API key names its user: admission's facts and the key's cached entry come from the
  // isolate's ledger when fresh there, else from one Redis pipeline that overlaps the rest
  // of authentication (read-only: a forged key reads nothing it could use and counts nothing).
  const claimed = presentedApiKeyIds(c.req.raw.headers);
  const claimedUser = claimed?.userId ?? null;
  let admissionReads: AdmissionReads | Promise<AdmissionReads> | undefined;
  if (known && claimed) {
    const query = {
      userId: claimed.userId,
      chuteId: known.chuteId,
      windowSeconds: config.RATE_LIMIT_WINDOW_S,
      nowMs: Date.now(),
      apiKeyId: claimed.apiKeyId,
    };
    admissionReads =
      warmAdmission(isolateLedger, { ...query, chuteFree: known.discount >= 1 }) ?? readAdmission(deps.redis, query);
  }
  const auth = await authenticateCaller(c, (await admissionReads)?.apiKey);
  const authMs = Date.now() - started;
  const json = jsonObject(body);
  const { chute, cord } = await resolve(auth, body, json);
  authorizeInvoke(auth, chute.chuteId);
  const url = new URL(c.req.url);
  return invokeChute(c, {
    chute,
    cord,
    user: auth.user,
    method: c.req.method,
    query: url.search.slice(1),
    contentType: c.req.header("content-type") ?? null,
    body: prepareBody(chute, cord, body, json),
    timings: [`auth;dur=${authMs}`, `resolve;dur=${Date.now() - started - authMs}`],
    admissionReads: auth.user.userId === claimedUser && chute.chuteId === known?.chuteId ? admissionReads : undefined,
  });
}

/** The chute `find` returns, if the caller may invoke it; 404 otherwise. */
async function visibleChute(
  find: () => Promise<GatewayChute | null>,
  userId: string,
  missing: string,
): Promise<GatewayChute> {
  const chute = await find();
  if (!chute || !canInvoke(chute, userId)) throw notFound(missing);
  return chute;
}

/**
 * `{slug}.{domain}`: every method and path goes to the chute's cords. An unknown slug is a
 * 404 before any authentication (nothing to authenticate for).
 */
export const slugInvocations = new Hono<AppEnv>().all("*", async (c) => {
  const { config, deps } = c.var;
  const url = new URL(c.req.url);
  const slug = url.hostname.slice(0, url.hostname.length - config.BASE_DOMAIN.length - 1).toLowerCase();
  const missing = `No chute is served at ${url.hostname}.`;
  const chute = await chuteBySlug(deps, slug, config.GATEWAY_CACHE_TTL_MS);
  if (!chute) throw notFound(missing);
  return call(c, chute, async (auth, _body, json) => {
    if (!canInvoke(chute, auth.user.userId)) throw notFound(missing);
    const cord = findPublicCord(chute.cords, c.req.method, url.pathname, json?.stream === true);
    if (!cord) throw notFound(`Chute ${chute.slug} has no cord for ${c.req.method} ${url.pathname}.`);
    return { chute, cord };
  });
});

/** `api.{domain}`: `POST /chutes/{chute_id}/{path}` (SDK-style). */
export const apiInvocations = new Hono<AppEnv>().post("/chutes/:chuteId/:path{.+}", async (c) => {
  const { config, deps } = c.var;
  const chuteId = c.req.param("chuteId");
  const path = `/${c.req.param("path")}`;
  const found = await chuteById(deps, chuteId, config.GATEWAY_CACHE_TTL_MS);
  return call(c, found, async (auth) => {
    const chute = await visibleChute(
      async () => found,
      auth.user.userId,
      `No chute ${chuteId}, or you may not use it.`,
    );
    const cord = findCord(chute.cords, path);
    if (!cord) throw notFound(`Chute ${chute.chuteId} has no cord ${path}.`);
    return { chute, cord };
  });
});

const OPENAI_ROUTES: Record<string, { templates: string[]; fallbackCord?: string }> = {
  "/v1/chat/completions": { templates: ["vllm"] },
  "/v1/completions": { templates: ["vllm"] },
  "/v1/embeddings": { templates: ["vllm", "tei"], fallbackCord: "/embed" },
};

/** `llm.{domain}`: OpenAI-compatible, routed by `model`. */
export const llmInvocations = new Hono<AppEnv>()
  .get("/v1/models", async (c) => {
    const auth = await authenticateCaller(c);
    const rows = await llmChutes(c.var.deps.db, auth.user.userId);
    return c.json({
      object: "list",
      data: rows.map((row) => ({
        id: row.name,
        object: "model",
        created: Math.floor(row.createdAt.getTime() / 1000),
        owned_by: row.userId,
      })),
    });
  })
  .post("/v1/:route{chat/completions|completions|embeddings}", (c) =>
    call(c, null, async (auth, _body, json) => {
      const { config, deps } = c.var;
      const path = new URL(c.req.url).pathname;
      const route = OPENAI_ROUTES[path];
      if (!route) throw notFound(`No OpenAI-compatible route for POST ${path}.`);
      if (!json) throw new ApiError("invalid_json", "The request body must be a JSON object with a model.");
      const model = json.model;
      if (typeof model !== "string" || model.length === 0 || model.length > 512) {
        throw new ApiError("bad_request", "The request body needs a model (a string naming an LLM chute).");
      }
      const chute = await visibleChute(
        () => chuteByModel(deps, model, auth.user.userId, config.GATEWAY_CACHE_TTL_MS, route.templates),
        auth.user.userId,
        `model not found: ${model}`,
      );
      const cord =
        findPublicCord(chute.cords, "POST", path, json.stream === true) ??
        (route.fallbackCord ? findCord(chute.cords, route.fallbackCord) : undefined);
      if (!cord) throw notFound(`Model ${model} does not serve ${path}.`);
      return { chute, cord };
    }),
  );
