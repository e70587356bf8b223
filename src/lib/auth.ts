/**
 * @module Authentication and authorization for routes. Every authenticated route uses
 * one of these middlewares, declared next to its path:
 *
 * ```ts
 * app.get("/users/me", requireUser({ purpose: "me" }), (c) => c.var.auth.user …)
 * app.post("/images", requireUser({ scope: { objectType: "images", action: "write" } }), ensureDeveloper, …)
 * app.post("/gpu_agents", requireAdmin(), …)
 * ```
 *
 * A request authenticates in one of two ways (docs/protocols.md, "API authentication"):
 * - **hotkey**: `X-Chutes-Hotkey` + `X-Chutes-Nonce` + `X-Chutes-Signature` over
 *   `{hotkey}:{nonce}:{payload}`, the payload being the route's `purpose` when it declares
 *   one, else the SHA-256 hex of the raw body. The hotkey must belong to a user.
 * - **API key**: `Authorization: Basic cpk_…`, `Authorization: Bearer cpk_…`,
 *   `Authorization: cpk_…` or `X-API-Key: cpk_…`.
 * Both set `c.var.auth`. A hotkey header without a signature is a 401, never an
 * anonymous request.
 *
 * Authorization: `permission` needs that bit on the user (403); an API key also needs
 * to be an admin key or scoped for the route's `scope` (403). Routes without a `scope`
 * (accounts, keys, admin) accept only admin keys.
 *
 * Miner routes use `requireMiner({ purpose })`: a signature by a hotkey registered on the
 * subnet, no user row, and never an API key.
 */
import type { Context, MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app.ts";
import { API_KEY_OBJECT_TYPES } from "../db/schema.ts";
import type { Config } from "../env.ts";
import { type AdmissionLedger, isolateLedger } from "../services/admission-ledger.ts";
import {
  type ApiKeyCacheEntry,
  type ApiKeyGrant,
  type ApiKeyObjectType,
  hasAccess,
  parseApiKey,
  resolveApiKey,
  type ScopeRequirement,
} from "../services/api-keys.ts";
import { currentPrice } from "../services/fmv.ts";
import { isRegisteredMiner } from "../services/metagraph.ts";
import { type AuthUser, authUserByHotkey, developerDepositStatus } from "../services/users.ts";
import { sha256Hex } from "./crypto.ts";
import { ApiError } from "./errors.ts";
import { hasPermission, type Permission } from "./permissions.ts";
import {
  hotkeyHeaders,
  recordSignature,
  USER_ID_HEADER,
  verifyHotkeyHeaders,
  verifyHotkeyRequest,
} from "./signatures.ts";
import { rawBody } from "./validation.ts";

export type Auth = { via: "hotkey"; user: AuthUser } | { via: "api_key"; user: AuthUser; apiKey: ApiKeyGrant };

export type AuthEnv = AppEnv & { Variables: { auth: Auth } };
export type MinerEnv = AppEnv & { Variables: { miner: { hotkey: string } } };
export type OptionalAuthEnv = AppEnv & { Variables: { auth: Auth | null } };

/** A fixed requirement, or one computed from the request (e.g. `scopeFromPath`). */
export type ScopeRule = ScopeRequirement | ((c: Context) => ScopeRequirement | undefined);

export interface AuthOptions {
  /**
   * The word a hotkey signs instead of a body hash (upstream's purpose table: `me`,
   * `api_keys`, `images`, `chutes`, …). Every bodiless route (GET, DELETE) declares one;
   * omit it on routes whose body is signed.
   */
  purpose?: string;
  /** A permission the user must hold. */
  permission?: Permission;
  /** What a scoped API key must allow; omitted, only admin keys are accepted. */
  scope?: ScopeRule;
  /**
   * The body limit of a route that takes more than `DEFAULT_MAX_BODY_BYTES` (uploads). The
   * body is read up front with it, so the signature check and the handler see the same bytes.
   */
  maxBodyBytes?: number | ((config: Config) => number);
}

const unauthorized = (detail: string) => new ApiError("unauthorized", detail);

/**
 * Verifies the request's hotkey signature (purpose, or the raw body's SHA-256, hashed
 * before anything parses it) and returns the hotkey. No user row is needed: registration
 * and miner routes build on this.
 */
export async function verifyHotkeySignature<E extends AppEnv>(
  c: Context<E>,
  options: { purpose?: string } = {},
): Promise<string> {
  return verifyHotkeyRequest(c.req.raw.headers, await signedPayload(c, options), c.var.deps);
}

/** What a hotkey signs for this route: its purpose, else the raw body's SHA-256 hex. */
async function signedPayload<E extends AppEnv>(c: Context<E>, options: { purpose?: string }): Promise<string> {
  return options.purpose ?? (await sha256Hex(await rawBody(c)));
}

/** The API key a request carries, if any (Authorization takes precedence over X-API-Key). */
function presentedApiKey(headers: Headers): string | undefined {
  const authorization = headers.get("authorization")?.trim();
  if (authorization) {
    const parts = authorization.split(/\s+/);
    const token = parts[parts.length - 1] ?? "";
    if (parts.length > 1 && parts[0]?.toLowerCase() === "bearer" && !token.startsWith("cpk_")) {
      throw unauthorized("Bearer tokens other than API keys are not accepted: use an API key (cpk_…) or a hotkey.");
    }
    return token;
  }
  return headers.get("x-api-key")?.trim() || undefined;
}

async function authenticate<E extends AppEnv>(
  c: Context<E>,
  options: AuthOptions,
  prefetched?: { apiKeyId: string; entry: ApiKeyCacheEntry | null },
  ledger?: AdmissionLedger,
): Promise<Auth | null> {
  const { maxBodyBytes } = options;
  if (maxBodyBytes !== undefined) {
    await rawBody(c, typeof maxBodyBytes === "number" ? maxBodyBytes : maxBodyBytes(c.var.config));
  }
  const headers = c.req.raw.headers;
  const signed = hotkeyHeaders(headers);
  if (signed.hotkey && signed.signature) {
    const { deps } = c.var;
    const verified = verifyHotkeyHeaders(headers, await signedPayload(c, options), deps.now());
    // Only a verified signature gets this far; its replay check and the user lookup are
    // independent round trips, so they overlap.
    const [user] = await Promise.all([authUserByHotkey(deps.db, verified.signer), recordSignature(verified, deps)]);
    if (!user) throw unauthorized(`Could not find user with hotkey: ${verified.signer}`);
    const claimed = headers.get(USER_ID_HEADER)?.trim();
    if (claimed && claimed.toLowerCase() !== user.userId) {
      throw unauthorized("X-Chutes-UserID does not match the user this hotkey belongs to.");
    }
    return { via: "hotkey", user };
  }
  const token = presentedApiKey(headers);
  if (token !== undefined) {
    const resolved = await resolveApiKey(c.var.deps, c.var.log, token, prefetched, ledger);
    if (!resolved) throw unauthorized("Invalid API key, or it was deleted.");
    return { via: "api_key", user: resolved.user, apiKey: resolved.grant };
  }
  if (signed.hotkey) throw unauthorized("X-Chutes-Signature is missing: requests made with a hotkey must be signed.");
  if (signed.signature) throw unauthorized("X-Chutes-Hotkey is missing: a signature needs the hotkey that made it.");
  return null;
}

function authorize<E extends AppEnv>(c: Context<E>, auth: Auth, options: AuthOptions): void {
  if (options.permission && !hasPermission(auth.user.permissionsBitmask, options.permission)) {
    throw new ApiError("forbidden", `This action requires the ${options.permission} permission.`);
  }
  if (auth.via === "api_key") {
    const need = typeof options.scope === "function" ? options.scope(c) : options.scope;
    if (!hasAccess(auth.apiKey, need)) {
      throw new ApiError(
        "forbidden",
        need
          ? `This API key is not scoped for ${need.action} on ${need.objectType}${need.objectId ? ` ${need.objectId}` : ""}.`
          : "This route needs an admin API key or a hotkey signature.",
      );
    }
  }
}

const MISSING_CREDENTIALS =
  "Authentication required: sign the request with your hotkey (X-Chutes-Hotkey, X-Chutes-Nonce, X-Chutes-Signature) or send an API key (Authorization: Basic cpk_…).";

/** Authenticates the caller as a user (401 otherwise) and authorizes per `options`. */
export function requireUser(options: AuthOptions = {}): MiddlewareHandler<AuthEnv> {
  return createMiddleware<AuthEnv>(async (c, next) => {
    const auth = await authenticate(c, options);
    if (!auth) throw unauthorized(MISSING_CREDENTIALS);
    authorize(c, auth, options);
    c.set("auth", auth);
    await next();
  });
}

/**
 * Like `requireUser`, but a request with no credentials at all proceeds with
 * `c.var.auth = null`. Credentials that are present must still be valid: a bad
 * signature is a 401, not a silent downgrade to anonymous.
 */
export function optionalUser(options: AuthOptions = {}): MiddlewareHandler<OptionalAuthEnv> {
  return createMiddleware<OptionalAuthEnv>(async (c, next) => {
    const auth = await authenticate(c, options);
    if (auth) authorize(c, auth, options);
    c.set("auth", auth);
    await next();
  });
}

/**
 * For the invocation gateway, where the chute (and so the scope) is known only after the
 * caller is: the authenticated caller, 401 without credentials. The raw body must have
 * been read with its limit first when it may exceed the default. API key entries come
 * from the isolate's admission ledger when fresh there (src/services/admission-ledger.ts).
 */
export async function authenticateCaller<E extends AppEnv>(
  c: Context<E>,
  prefetched?: { apiKeyId: string; entry: ApiKeyCacheEntry | null },
): Promise<Auth> {
  const auth = await authenticate(c, {}, prefetched, isolateLedger);
  if (!auth) throw unauthorized(MISSING_CREDENTIALS);
  return auth;
}

/** The key and user ids an API key on the request claims (not yet verified), or null. */
export function presentedApiKeyIds(headers: Headers): { apiKeyId: string; userId: string } | null {
  if (headers.get("x-chutes-hotkey")) return null;
  try {
    const token = presentedApiKey(headers);
    return token ? parseApiKey(token) : null;
  } catch {
    return null;
  }
}

/** 403 unless the caller may invoke `chuteId` (hotkeys and admin keys may; scoped keys need an invoke scope for it). */
export function authorizeInvoke(auth: Auth, chuteId: string): void {
  if (auth.via !== "api_key") return;
  const need: ScopeRequirement = { objectType: "chutes", action: "invoke", objectId: chuteId };
  if (!hasAccess(auth.apiKey, need)) {
    throw new ApiError("forbidden", `This API key is not scoped to invoke chute ${chuteId}.`);
  }
}

/**
 * Platform administrators only (the `admin` permission bit; admin API keys of such a user
 * also pass). For operator routes such as registering a GPU agent's public key.
 */
export function requireAdmin(options: Pick<AuthOptions, "purpose"> = {}): MiddlewareHandler<AuthEnv> {
  return requireUser({ ...options, permission: "admin" });
}

/**
 * Miners only (upstream's `registered_to=netuid`, minus its holes): the request must be
 * signed by a hotkey registered on `NETUID` in the metagraph mirror. There is no other
 * way in: no API key, no unsigned `X-Chutes-Hotkey`. Sets `c.var.miner`.
 */
export function requireMiner(options: Pick<AuthOptions, "purpose"> = {}): MiddlewareHandler<MinerEnv> {
  return createMiddleware<MinerEnv>(async (c, next) => {
    const headers = c.req.raw.headers;
    const signed = hotkeyHeaders(headers);
    if (!signed.hotkey || !signed.signature) {
      throw unauthorized(
        "Miner requests must be signed by a registered hotkey (X-Chutes-Hotkey, X-Chutes-Nonce, X-Chutes-Signature); API keys are not accepted.",
      );
    }
    const { deps, config } = c.var;
    const verified = verifyHotkeyHeaders(headers, await signedPayload(c, options), deps.now());
    const [registered] = await Promise.all([
      isRegisteredMiner(deps.db, verified.signer, config.NETUID),
      recordSignature(verified, deps),
    ]);
    if (!registered) throw unauthorized(`Hotkey ${verified.signer} is not registered on netuid ${config.NETUID}.`);
    c.set("miner", { hotkey: verified.signer });
    await next();
  });
}

/**
 * The developer-deposit gate (upstream `ensure_is_developer`): after `requireUser`, lets
 * through users with the developer permission, or everyone when `DEVELOPER_DEPOSIT_USD`
 * is 0; otherwise 401 naming what is left to deposit and where.
 */
export const ensureDeveloper: MiddlewareHandler<AuthEnv> = createMiddleware<AuthEnv>(async (c, next) => {
  const required = c.var.config.DEVELOPER_DEPOSIT_USD;
  if (required > 0 && !hasPermission(c.var.auth.user.permissionsBitmask, "developer")) {
    const status = await developerDepositStatus(c.var.deps.db, c.var.auth.user.userId);
    if (!status) throw unauthorized("This account no longer exists.");
    const remaining = Math.max(0, required - status.depositedUsd);
    const price = await currentPrice(c.var.deps);
    throw new ApiError(
      "developer_deposit_required",
      `You do not have developer permissions. To get them, deposit $${remaining.toFixed(2)} USD worth of TAO ` +
        `(${price ? `currently ~${(remaining / price.usd).toFixed(4)} TAO` : "no TAO price is available right now"}; ` +
        `of the $${required} developer deposit) to your developer deposit address: ${status.developerPaymentAddress}.`,
    );
  }
  await next();
});

/**
 * The scope a request needs, derived from its path as upstream recommends: the object
 * type is the first path segment, the object id the second (when the path has exactly
 * two), the action follows the method, and `POST /chutes/{id}/{anything}` is an invoke of
 * that chute. Undefined for paths outside the scoped object types (admin keys only).
 */
export function scopeFromPath(c: Context): ScopeRequirement | undefined {
  const segments = new URL(c.req.url).pathname.split("/").filter(Boolean);
  const [type, id] = segments;
  if (!type || !(API_KEY_OBJECT_TYPES as readonly string[]).includes(type)) return undefined;
  const objectType = type as ApiKeyObjectType;
  const method = c.req.method.toUpperCase();
  if (objectType === "chutes" && method === "POST" && segments.length > 2) {
    return { objectType, action: "invoke", objectId: id };
  }
  const action = method === "GET" || method === "HEAD" ? "read" : method === "DELETE" ? "delete" : "write";
  return { objectType, action, objectId: segments.length === 2 ? id : null };
}
