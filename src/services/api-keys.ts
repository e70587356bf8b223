/**
 * @module API keys: minting, listing, deleting, and resolving a presented key to its
 * user and scopes.
 *
 * Format (upstream's): `cpk_{api_key_id hex}.{user_id hex}.{32 alphanumerics}`. Only the
 * SHA-256 of the whole key is stored (architecture §5.2: keys carry 190 random bits, so a
 * slow hash buys nothing and would not fit a 128 MB isolate); it is compared in constant
 * time.
 *
 * Lookups are cached in Redis under `auth:api_key:{api_key_id}` for
 * `API_KEY_CACHE_TTL_SECONDS` (key hash, admin flag, scopes, the user's id, name, hotkey
 * and permissions). Deleting a key first overwrites that entry with a tombstone that
 * outlives any lookup in flight (`SET` beats the lookups' `SET NX`), so a deleted key
 * stops working at once on every isolate, for every route but the invocation gateway.
 * The gateway also keeps entries in its isolate's admission ledger
 * (src/services/admission-ledger.ts): at most `LEDGER_FRESH_MS` (1 s) old and re-read from
 * Redis every `LEDGER_SYNC_MS` while in use, so there a deleted key stops working at once in
 * the isolate that deleted it and within one sync (about 100 ms) elsewhere. Permission
 * changes reach key-authenticated requests within the TTL.
 */
import { and, count, desc, eq, ilike, inArray, or, sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { uniqueViolation } from "../db/errors.ts";
import { containing } from "../db/patterns.ts";
import { type API_KEY_ACTIONS, type API_KEY_OBJECT_TYPES, apiKeyScopes, apiKeys, users } from "../db/schema.ts";
import { randomAlphanumeric, sha256Hex, timingSafeEqual } from "../lib/crypto.ts";
import { compactUuid, expandUuid, isUuid } from "../lib/ids.ts";
import type { Logger } from "../lib/log.ts";
import type { Redis } from "../lib/redis.ts";
import type { AdmissionLedger } from "./admission-ledger.ts";
import type { AuthUser } from "./users.ts";

export type ApiKeyObjectType = (typeof API_KEY_OBJECT_TYPES)[number];
export type ApiKeyAction = (typeof API_KEY_ACTIONS)[number];

export const API_KEY_CACHE_TTL_SECONDS = 60;
/** Longer than any request can take between reading a key from Postgres and caching it. */
export const API_KEY_TOMBSTONE_TTL_SECONDS = 300;

const API_KEY = /^cpk_([0-9a-f]{32})\.([0-9a-f]{32})\.([A-Za-z0-9]{32})$/;

/** The ids embedded in a key, or null when `token` is not a well-formed key. */
export function parseApiKey(token: string): { apiKeyId: string; userId: string } | null {
  const match = API_KEY.exec(token);
  const apiKeyId = match?.[1] ? expandUuid(match[1]) : null;
  const userId = match?.[2] ? expandUuid(match[2]) : null;
  return apiKeyId && userId ? { apiKeyId, userId } : null;
}

export interface ScopeGrant {
  objectType: ApiKeyObjectType;
  /** null: every object of the type. */
  objectId: string | null;
  /** null: every action. */
  action: ApiKeyAction | null;
}

/** What an API key presents to authorization. */
export interface ApiKeyGrant {
  apiKeyId: string;
  /** An admin key acts with its owner's full authority; a scoped key only within its scopes. */
  admin: boolean;
  scopes: ScopeGrant[];
}

/** What a route needs a scoped key to allow. `objectId` null/absent: a list or create. */
export interface ScopeRequirement {
  objectType: ApiKeyObjectType;
  action: ApiKeyAction;
  objectId?: string | null;
}

/**
 * Whether `grant` allows `need`: admin keys allow everything their owner may do; a scoped
 * key allows what one of its scopes covers. Without a requirement (routes on accounts and
 * keys themselves) only admin keys pass. Upstream's "any chutes scope opens every
 * model on llm." shortcut is deliberately absent (architecture §5.1).
 */
export function hasAccess(grant: ApiKeyGrant, need: ScopeRequirement | undefined): boolean {
  if (grant.admin) return true;
  if (!need) return false;
  return grant.scopes.some(
    (scope) =>
      scope.objectType === need.objectType &&
      (scope.action === null || scope.action === need.action) &&
      (scope.objectId === null || scope.objectId === need.objectId),
  );
}

export interface ApiKeyView {
  apiKeyId: string;
  userId: string;
  name: string;
  admin: boolean;
  createdAt: Date;
  lastUsedAt: Date | null;
  scopes: (ScopeGrant & { scopeId: string })[];
}

export interface CreateApiKeyInput {
  userId: string;
  name: string;
  admin: boolean;
  /** Ignored for admin keys, as upstream. */
  scopes: ScopeGrant[];
}

export type CreateApiKeyResult = { ok: true; key: ApiKeyView; secretKey: string } | { ok: false; reason: "name_taken" };

/** Mints a key; the secret is returned here once and never stored. */
export async function createApiKey(db: Database, input: CreateApiKeyInput): Promise<CreateApiKeyResult> {
  const apiKeyId = crypto.randomUUID();
  const secretKey = `cpk_${compactUuid(apiKeyId)}.${compactUuid(input.userId)}.${randomAlphanumeric(32)}`;
  const unique = new Map<string, ScopeGrant>();
  for (const scope of input.admin ? [] : input.scopes) {
    unique.set(JSON.stringify([scope.objectType, scope.objectId, scope.action]), scope);
  }
  const scopes = [...unique.values()].map((scope) => ({ ...scope, scopeId: crypto.randomUUID() }));
  try {
    const row = await db.transaction(async (tx) => {
      const [inserted] = await tx
        .insert(apiKeys)
        .values({
          apiKeyId,
          userId: input.userId,
          name: input.name,
          admin: input.admin,
          keyHash: await sha256Hex(secretKey),
        })
        .returning({ createdAt: apiKeys.createdAt });
      if (scopes.length > 0) await tx.insert(apiKeyScopes).values(scopes.map((scope) => ({ ...scope, apiKeyId })));
      return inserted;
    });
    return {
      ok: true,
      secretKey,
      key: {
        apiKeyId,
        userId: input.userId,
        name: input.name,
        admin: input.admin,
        createdAt: row?.createdAt ?? new Date(),
        lastUsedAt: null,
        scopes,
      },
    };
  } catch (error) {
    if (uniqueViolation(error) === "api_keys_user_name_key") return { ok: false, reason: "name_taken" };
    throw error;
  }
}

const keyColumns = {
  apiKeyId: apiKeys.apiKeyId,
  userId: apiKeys.userId,
  name: apiKeys.name,
  admin: apiKeys.admin,
  createdAt: apiKeys.createdAt,
  lastUsedAt: apiKeys.lastUsedAt,
};

async function withScopes(db: Database, keys: Omit<ApiKeyView, "scopes">[]): Promise<ApiKeyView[]> {
  if (keys.length === 0) return [];
  const rows = await db
    .select()
    .from(apiKeyScopes)
    .where(
      inArray(
        apiKeyScopes.apiKeyId,
        keys.map((key) => key.apiKeyId),
      ),
    )
    .orderBy(apiKeyScopes.scopeId);
  return keys.map((key) => ({
    ...key,
    scopes: rows
      .filter((row) => row.apiKeyId === key.apiKeyId)
      .map(({ scopeId, objectType, objectId, action }) => ({ scopeId, objectType, objectId, action })),
  }));
}

/** The user's keys, newest first, optionally filtered by a case-insensitive name fragment. */
export async function listApiKeys(
  db: Database,
  userId: string,
  query: { name?: string; page: number; limit: number },
): Promise<{ total: number; items: ApiKeyView[] }> {
  const where = and(eq(apiKeys.userId, userId), query.name ? ilike(apiKeys.name, containing(query.name)) : undefined);
  const [totals, keys] = await Promise.all([
    db.select({ total: count() }).from(apiKeys).where(where),
    db
      .select(keyColumns)
      .from(apiKeys)
      .where(where)
      .orderBy(desc(apiKeys.createdAt), apiKeys.apiKeyId)
      .limit(query.limit)
      .offset(query.page * query.limit),
  ]);
  return { total: totals[0]?.total ?? 0, items: await withScopes(db, keys) };
}

/** One of the user's keys by id or by name; null when the user has no such key. */
export async function findApiKey(db: Database, userId: string, idOrName: string): Promise<ApiKeyView | null> {
  const match = isUuid(idOrName)
    ? or(eq(apiKeys.apiKeyId, idOrName.toLowerCase()), eq(apiKeys.name, idOrName))
    : eq(apiKeys.name, idOrName);
  const keys = await db
    .select(keyColumns)
    .from(apiKeys)
    .where(and(eq(apiKeys.userId, userId), match))
    .orderBy(sql`${apiKeys.apiKeyId} = ${idOrName.toLowerCase()} desc`)
    .limit(1);
  const [key] = await withScopes(db, keys);
  return key ?? null;
}

const cacheKey = (apiKeyId: string) => `auth:api_key:${apiKeyId}`;
/** The Redis key of a key's cached lookup (the gateway reads it in its admission pipeline). */
export const apiKeyCacheKey = cacheKey;

export type DeleteApiKeyResult =
  | { status: "deleted"; apiKeyId: string }
  | { status: "not_found" }
  | { status: "cache_unavailable"; error: unknown };

/**
 * Deletes one of the user's keys (scopes cascade). The cache tombstone is written first:
 * if Redis cannot take it, nothing is deleted, because a cached copy could otherwise keep
 * the key working until it expires.
 */
export async function deleteApiKey(
  deps: { db: Database; redis: Redis },
  userId: string,
  idOrName: string,
  ledger?: AdmissionLedger,
): Promise<DeleteApiKeyResult> {
  const key = await findApiKey(deps.db, userId, idOrName);
  if (!key) return { status: "not_found" };
  ledger?.forget(cacheKey(key.apiKeyId));
  try {
    await deps.redis.set(cacheKey(key.apiKeyId), { deleted: true }, { ex: API_KEY_TOMBSTONE_TTL_SECONDS });
  } catch (error) {
    return { status: "cache_unavailable", error };
  }
  await deps.db.delete(apiKeys).where(and(eq(apiKeys.apiKeyId, key.apiKeyId), eq(apiKeys.userId, userId)));
  return { status: "deleted", apiKeyId: key.apiKeyId };
}

interface CachedApiKey {
  keyHash: string;
  grant: ApiKeyGrant;
  user: AuthUser;
}

export type ApiKeyCacheEntry = CachedApiKey | { deleted: true };
type CacheEntry = ApiKeyCacheEntry;

async function loadApiKey(db: Database, apiKeyId: string): Promise<CachedApiKey | null> {
  const rows = await db
    .select({
      keyHash: apiKeys.keyHash,
      admin: apiKeys.admin,
      userId: users.userId,
      username: users.username,
      hotkey: users.hotkey,
      permissionsBitmask: users.permissionsBitmask,
      objectType: apiKeyScopes.objectType,
      objectId: apiKeyScopes.objectId,
      action: apiKeyScopes.action,
    })
    .from(apiKeys)
    .innerJoin(users, eq(users.userId, apiKeys.userId))
    .leftJoin(apiKeyScopes, eq(apiKeyScopes.apiKeyId, apiKeys.apiKeyId))
    .where(eq(apiKeys.apiKeyId, apiKeyId));
  const [first] = rows;
  if (!first) return null;
  const scopes: ScopeGrant[] = [];
  for (const row of rows) {
    if (row.objectType) scopes.push({ objectType: row.objectType, objectId: row.objectId, action: row.action });
  }
  return {
    keyHash: first.keyHash,
    grant: { apiKeyId, admin: first.admin, scopes },
    user: {
      userId: first.userId,
      username: first.username,
      hotkey: first.hotkey,
      permissionsBitmask: first.permissionsBitmask,
    },
  };
}

export interface ResolveDeps {
  readonly db: Database;
  readonly redis: Redis;
}

/**
 * The user and grant behind a presented key, or null when the key is malformed, unknown,
 * deleted, or its secret or embedded user id is wrong. Redis is only a cache here: when it
 * fails, Postgres answers (a deleted key is gone from Postgres, so this fails safe).
 */
export async function resolveApiKey(
  deps: ResolveDeps,
  log: Logger,
  token: string,
  /** The cache entry, when the caller already read it from Redis (null: a miss). */
  prefetched?: { apiKeyId: string; entry: ApiKeyCacheEntry | null },
  /** The gateway's ledger: a fresh entry there saves the Redis read, and what Redis answers is kept there. */
  ledger?: AdmissionLedger,
): Promise<{ user: AuthUser; grant: ApiKeyGrant } | null> {
  const ids = parseApiKey(token);
  if (!ids) return null;
  const presentedHash = await sha256Hex(token);
  const valid = (key: CachedApiKey) => timingSafeEqual(presentedHash, key.keyHash) && key.user.userId === ids.userId;
  let entry: CacheEntry | null = null;
  const remembered =
    prefetched?.apiKeyId === ids.apiKeyId ? undefined : ledger?.value<CacheEntry>(cacheKey(ids.apiKeyId), Date.now());
  if (prefetched && prefetched.apiKeyId === ids.apiKeyId) {
    entry = prefetched.entry;
  } else if (remembered) {
    entry = remembered;
  } else {
    try {
      entry = await deps.redis.get<CacheEntry>(cacheKey(ids.apiKeyId));
      ledger?.remember(cacheKey(ids.apiKeyId), entry, Date.now());
    } catch (error) {
      log.warn("api key cache unavailable; reading Postgres", { error: (error as Error).message });
    }
  }
  if (entry !== null) {
    return "deleted" in entry || !valid(entry) ? null : { user: entry.user, grant: entry.grant };
  }
  const loaded = await loadApiKey(deps.db, ids.apiKeyId);
  if (!loaded) return null;
  const ok = valid(loaded);
  await Promise.all([
    // Loss-tolerant: on failure the next request reads Postgres again.
    deps.redis.set(cacheKey(ids.apiKeyId), loaded, { nx: true, ex: API_KEY_CACHE_TTL_SECONDS }).catch(() => null),
    // Once per cache period per key, so `last_used_at` is accurate to the cache TTL.
    ok && deps.db.update(apiKeys).set({ lastUsedAt: sql`now()` }).where(eq(apiKeys.apiKeyId, ids.apiKeyId)),
  ]);
  return ok ? { user: loaded.user, grant: loaded.grant } : null;
}
