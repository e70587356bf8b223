/**
 * @module `/api_keys`: create, list, get and delete the caller's API keys, in upstream's
 * shapes (`APIKeyResponse`; scopes expose `action`, which upstream misnamed `method`).
 * List and create answer on both `/api_keys` and `/api_keys/`.
 *
 * Only a hotkey signature or an admin key may manage keys (no route here declares a
 * scope), so a scoped key can never mint itself a wider one.
 */
import { Hono } from "hono";
import type { AppEnv } from "../app.ts";
import { requireUser } from "../lib/auth.ts";
import { ApiError } from "../lib/errors.ts";
import { jsonBody, pathParams, queryParams } from "../lib/validation.ts";
import { apiKeyPath, createApiKeyBody, listApiKeysQuery } from "../schemas/api-keys.ts";
import { isolateLedger } from "../services/admission-ledger.ts";
import { type ApiKeyView, createApiKey, deleteApiKey, findApiKey, listApiKeys } from "../services/api-keys.ts";

const PURPOSE = "api_keys";
const COLLECTION = ["/api_keys", "/api_keys/"];

function apiKeyResponse(key: ApiKeyView) {
  return {
    api_key_id: key.apiKeyId,
    user_id: key.userId,
    admin: key.admin,
    name: key.name,
    created_at: key.createdAt.toISOString(),
    last_used_at: key.lastUsedAt?.toISOString() ?? null,
    scopes: key.scopes.map((scope) => ({
      scope_id: scope.scopeId,
      object_type: scope.objectType,
      object_id: scope.objectId,
      action: scope.action,
    })),
  };
}

const notFound = (key: string) =>
  new ApiError("not_found", `API key with id ${key} not found or doesn't belong to you`);

export const apiKeysRoutes = new Hono<AppEnv>()
  .on("POST", COLLECTION, requireUser(), async (c) => {
    const body = await jsonBody(c, createApiKeyBody);
    const result = await createApiKey(c.var.deps.db, {
      userId: c.var.auth.user.userId,
      name: body.name,
      admin: body.admin,
      scopes: body.scopes.map((scope) => ({
        objectType: scope.object_type,
        objectId: scope.object_id ?? null,
        action: scope.action ?? null,
      })),
    });
    if (!result.ok) throw new ApiError("conflict", "An API key already exists with this name");
    return c.json({ ...apiKeyResponse(result.key), secret_key: result.secretKey });
  })
  .on("GET", COLLECTION, requireUser({ purpose: PURPOSE }), async (c) => {
    const query = queryParams(c, listApiKeysQuery);
    const { total, items } = await listApiKeys(c.var.deps.db, c.var.auth.user.userId, query);
    return c.json({ total, page: query.page, limit: query.limit, items: items.map(apiKeyResponse) });
  })
  .get("/api_keys/:key", requireUser({ purpose: PURPOSE }), async (c) => {
    const { key } = pathParams(c, apiKeyPath);
    const found = await findApiKey(c.var.deps.db, c.var.auth.user.userId, key);
    if (!found) throw notFound(key);
    return c.json(apiKeyResponse(found));
  })
  .delete("/api_keys/:key", requireUser({ purpose: PURPOSE }), async (c) => {
    const { key } = pathParams(c, apiKeyPath);
    const result = await deleteApiKey(c.var.deps, c.var.auth.user.userId, key, isolateLedger);
    if (result.status === "not_found") throw notFound(key);
    if (result.status === "cache_unavailable") {
      throw new ApiError(
        "dependency_unavailable",
        "Redis is unavailable, so the key cannot be revoked everywhere at once; nothing was deleted. Retry shortly.",
        { headers: { "retry-after": "5" }, cause: result.error },
      );
    }
    return c.json({ api_key_id: result.apiKeyId, deleted: true });
  });
