/**
 * @module `registry.{domain}`: the image registry front (docs/protocols.md, "Registry").
 * The Worker is the only gate of a CNCF Distribution origin that has no authentication of
 * its own: it authenticates every OCI Distribution request, then proxies it to
 * `REGISTRY_ORIGIN_URL` with its body passed through untouched, or, for blob downloads when
 * the origin stores in R2, redirects (307) to a short-lived presigned R2 URL so the bytes
 * never cross the Worker.
 *
 * Who may do what:
 * - **miners** pull: every request carries `X-Chutes-Hotkey`, `X-Chutes-Nonce` and
 *   `X-Chutes-Signature` over `{hotkey}:{nonce}:registry` (upstream's contract, a fresh
 *   signature per request), by a hotkey registered on `NETUID`; GET and HEAD only. Each
 *   signature is verified and accepted once (the replay cache), so concurrent layer pulls
 *   each carry their own; only the registration lookup is cached, briefly and positively.
 * - **builders** push: `Authorization: Basic` with the push token their claim returned
 *   (any user name), valid while their attempt holds its lease, for the image's own
 *   repository `{username}/{name}` only (cross-repository blob mounts from elsewhere are
 *   turned into plain uploads).
 * - anyone else: 401 `UNAUTHORIZED` with `WWW-Authenticate`.
 * Errors are in the registry's format, `{"errors":[{"code","message","detail"}]}`.
 */
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { type AppEnv, createHostApp } from "../app.ts";
import { ApiError } from "../lib/errors.ts";
import { distributionBlobKey, presignGet } from "../lib/r2-presign.ts";
import {
  HOTKEY_HEADER,
  hotkeyHeaders,
  NONCE_HEADER,
  recordSignature,
  SIGNATURE_HEADER,
  USER_ID_HEADER,
  verifyHotkeyHeaders,
} from "../lib/signatures.ts";
import { pushGrant } from "../services/builds.ts";
import { isRegisteredMiner } from "../services/metagraph.ts";

export const REGISTRY_PURPOSE = "registry";
export const REALM = "chutes-edge registry";

type Access = { kind: "miner"; hotkey: string } | { kind: "builder"; repository: string };
type RegistryEnv = AppEnv & { Variables: { access: Access } };

const REGISTRY_CODES: Record<number, string> = {
  400: "UNSUPPORTED",
  401: "UNAUTHORIZED",
  403: "DENIED",
  404: "NAME_UNKNOWN",
  405: "UNSUPPORTED",
  413: "SIZE_INVALID",
  422: "UNSUPPORTED",
  429: "TOOMANYREQUESTS",
};

/** An error as Distribution writes one; 401s carry the challenge clients expect. */
export function registryErrorResponse(error: ApiError, requestId: string): Response {
  const code = REGISTRY_CODES[error.status] ?? "UNAVAILABLE";
  const headers: Record<string, string> = {
    ...error.headers,
    "content-type": "application/json; charset=utf-8",
    "docker-distribution-api-version": "registry/2.0",
    "x-request-id": requestId,
  };
  if (error.status === 401) headers["www-authenticate"] = `Basic realm="${REALM}"`;
  const body = { errors: [{ code, message: error.detail, detail: { request_id: requestId } }] };
  return new Response(JSON.stringify(body), { status: error.status, headers });
}

const unauthorized = (message: string) => new ApiError("unauthorized", message);

/** The password of a Basic `Authorization` header, or null. */
function basicPassword(header: string | undefined): string | null {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header?.trim() ?? "");
  if (!match?.[1]) return null;
  try {
    const decoded = atob(match[1]);
    const colon = decoded.indexOf(":");
    return colon >= 0 ? decoded.slice(colon + 1) : null;
  } catch {
    return null;
  }
}

/** Whether `hotkey` is a miner, trusting a recent positive answer for `REGISTRY_MINER_CACHE_S`. */
async function registeredMiner({ deps, config }: AppEnv["Variables"], hotkey: string): Promise<boolean> {
  const ttl = config.REGISTRY_MINER_CACHE_S;
  const key = `registry:miner:${config.NETUID}:${hotkey}`;
  if (ttl > 0 && (await deps.redis.get(key).catch(() => null)) !== null) return true;
  const registered = await isRegisteredMiner(deps.db, hotkey, config.NETUID);
  if (registered && ttl > 0) await deps.redis.set(key, 1, { ex: ttl }).catch(() => undefined);
  return registered;
}

const authenticate = createMiddleware<RegistryEnv>(async (c, next) => {
  const headers = c.req.raw.headers;
  const signed = hotkeyHeaders(headers);
  if (signed.hotkey || signed.signature) {
    const { deps } = c.var;
    const verified = verifyHotkeyHeaders(headers, REGISTRY_PURPOSE, deps.now());
    const [registered] = await Promise.all([registeredMiner(c.var, verified.signer), recordSignature(verified, deps)]);
    if (!registered)
      throw unauthorized(`Hotkey ${verified.signer} is not registered on netuid ${c.var.config.NETUID}.`);
    if (c.req.method !== "GET" && c.req.method !== "HEAD") {
      throw new ApiError("forbidden", "Miners may only pull (GET and HEAD).");
    }
    c.set("access", { kind: "miner", hotkey: verified.signer });
    return next();
  }
  const token = basicPassword(c.req.header("authorization"));
  if (token) {
    const grant = await pushGrant(c.var.deps, token);
    if (!grant) throw unauthorized("This push token is not valid: it belongs to no running build.");
    c.set("access", { kind: "builder", repository: grant.repository });
    return next();
  }
  throw unauthorized(
    `Registry requests must be signed by a registered miner hotkey (X-Chutes-Hotkey, X-Chutes-Nonce, X-Chutes-Signature over {hotkey}:{nonce}:${REGISTRY_PURPOSE}).`,
  );
});

/** `/v2/{name}/(manifests|blobs|tags)/…` → name; `/v2/` → "" (the version check); else null. */
function repositoryOfPath(path: string): string | null {
  if (path === "/v2/" || path === "/v2") return "";
  const match = /^\/v2\/(.+?)\/(?:manifests|blobs|tags)\//.exec(path);
  return match?.[1] ?? null;
}

/** Request headers never forwarded to the origin: credentials and the client's own routing. */
const DROPPED = [HOTKEY_HEADER, NONCE_HEADER, SIGNATURE_HEADER, USER_ID_HEADER, "authorization", "cookie", "host"];

async function proxy(c: Context<RegistryEnv>): Promise<Response> {
  const { config } = c.var;
  const access = c.var.access;
  const url = new URL(c.req.url);
  const repository = repositoryOfPath(url.pathname);
  if (repository === null) throw new ApiError("not_found", `No registry route for ${url.pathname}.`);
  if (access.kind === "builder" && repository !== "" && repository !== access.repository) {
    throw new ApiError("forbidden", `This push token may push ${access.repository} only, not ${repository}.`);
  }
  if (
    access.kind === "builder" &&
    url.searchParams.has("mount") &&
    url.searchParams.get("from") !== access.repository
  ) {
    // A cross-repository mount would copy another image's blob in by its digest alone.
    url.searchParams.delete("mount");
    url.searchParams.delete("from");
  }
  const blob = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname)?.[1];
  if (blob && c.req.method === "GET" && config.REGISTRY_STORAGE === "r2") {
    const key = distributionBlobKey(config.REGISTRY_S3_ROOT, blob);
    if (
      key &&
      config.REGISTRY_S3_ENDPOINT &&
      config.REGISTRY_S3_BUCKET &&
      config.REGISTRY_S3_ACCESS_KEY_ID &&
      config.REGISTRY_S3_SECRET_ACCESS_KEY
    ) {
      const location = await presignGet({
        endpoint: config.REGISTRY_S3_ENDPOINT,
        bucket: config.REGISTRY_S3_BUCKET,
        key,
        accessKeyId: config.REGISTRY_S3_ACCESS_KEY_ID,
        secretAccessKey: config.REGISTRY_S3_SECRET_ACCESS_KEY,
        expiresS: config.REGISTRY_PRESIGN_TTL_S,
      });
      return new Response(null, {
        status: 307,
        headers: { location, "docker-content-digest": blob, "cache-control": "no-store" },
      });
    }
  }
  if (!config.REGISTRY_ORIGIN_URL) {
    throw new ApiError("dependency_unavailable", "This deployment has no registry origin (REGISTRY_ORIGIN_URL).");
  }
  const headers = new Headers(c.req.raw.headers);
  for (const name of DROPPED) headers.delete(name);
  const origin = new URL(url.pathname + url.search, config.REGISTRY_ORIGIN_URL);
  const hasBody = c.req.method !== "GET" && c.req.method !== "HEAD";
  // The body stream is handed to fetch as it is: layer uploads pass through without a copy.
  return fetch(origin, {
    method: c.req.method,
    headers,
    body: hasBody ? c.req.raw.body : undefined,
    redirect: "manual",
  });
}

export const registryHost = createHostApp({
  notFound: (method, path) => `No registry route for ${method} ${path}`,
  renderError: registryErrorResponse,
});
registryHost.all("/v2", authenticate, proxy);
registryHost.all("/v2/*", authenticate, proxy);
