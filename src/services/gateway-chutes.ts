/**
 * @module The chute facts the invocation gateway needs (cords, price inputs, owner,
 * shares, image owner), looked up by slug, id or model and cached in the isolate for
 * `GATEWAY_CACHE_TTL_MS` (5 s by default), so a warm gateway asks Postgres nothing per
 * request. The cost of the cache: a chute made private, unshared or deleted stays
 * callable by those who could call it for at most that long (plus one reload); misses are
 * cached too, so unknown names cannot drive one query per request.
 *
 * Visibility is applied after the lookup (`canInvoke`): public chutes for everyone,
 * private ones for the owner and the users they are shared with.
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import { chuteShares, chutes, images } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";
import type { Cord } from "../schemas/cords.ts";

export interface GatewayChute {
  chuteId: string;
  userId: string;
  name: string;
  slug: string;
  public: boolean;
  standardTemplate: string | null;
  cords: Cord[];
  computeMultiplier: number;
  discount: number;
  imageId: string;
  imageUserId: string;
  /** Users a private chute is shared with. */
  sharedWith: string[];
}

interface Entry {
  value: GatewayChute | null;
  expires: number;
  /** The reload in flight, if any (one per key: concurrent misses share it). */
  loading?: Promise<GatewayChute | null>;
  /** Whether `value` was ever loaded (an entry made by a first, still running load has none). */
  loaded: boolean;
}

const MAX_ENTRIES = 10_000;
const cache = new Map<string, Entry>();

/**
 * The cached lookup of `key`. One load per key at a time: while it runs, callers of a key
 * that was loaded before get the expired value (so a busy chute pays one Postgres lookup
 * per TTL, on one request, not one per concurrent caller), and first callers share it.
 */
function cached(
  key: string,
  ttlMs: number,
  load: () => Promise<GatewayChute | null>,
  nowMs = Date.now(),
): Promise<GatewayChute | null> {
  const hit = cache.get(key);
  if (hit && hit.expires > nowMs) return Promise.resolve(hit.value);
  if (hit?.loading) return hit.loaded ? Promise.resolve(hit.value) : hit.loading;
  if (ttlMs <= 0) return load();
  if (!hit && cache.size >= MAX_ENTRIES) cache.clear();
  const entry: Entry = hit ?? { value: null, expires: 0, loaded: false };
  const loading = load().then(
    (value) => {
      Object.assign(entry, { value, expires: Date.now() + ttlMs, loaded: true, loading: undefined });
      return value;
    },
    (error: unknown) => {
      entry.loading = undefined;
      if (!entry.loaded) cache.delete(key);
      throw error;
    },
  );
  entry.loading = loading;
  cache.set(key, entry);
  return loading;
}

/** Drops every cached lookup (tests that change a chute and call it at once). */
export function clearGatewayChuteCache(): void {
  cache.clear();
}

const columns = {
  chuteId: chutes.chuteId,
  userId: chutes.userId,
  name: chutes.name,
  slug: chutes.slug,
  public: chutes.public,
  standardTemplate: chutes.standardTemplate,
  cords: chutes.cords,
  nodeSelector: chutes.nodeSelector,
  discount: chutes.discount,
  imageId: chutes.imageId,
  imageUserId: images.userId,
  sharedWith: sql<string[]>`coalesce((select array_agg(${chuteShares.userId}) from ${chuteShares}
    where ${chuteShares.chuteId} = ${chutes.chuteId}), '{}')`,
};

type Row = {
  [K in keyof typeof columns]: K extends "nodeSelector"
    ? { compute_multiplier: number }
    : K extends "sharedWith"
      ? string[]
      : K extends "imageUserId"
        ? string
        : (typeof chutes.$inferSelect)[K & keyof typeof chutes.$inferSelect];
};

const toGatewayChute = (row: Row): GatewayChute => ({
  chuteId: row.chuteId,
  userId: row.userId,
  name: row.name,
  slug: row.slug,
  public: row.public,
  standardTemplate: row.standardTemplate,
  cords: row.cords,
  computeMultiplier: row.nodeSelector.compute_multiplier,
  discount: row.discount,
  imageId: row.imageId,
  imageUserId: row.imageUserId,
  sharedWith: row.sharedWith ?? [],
});

async function selectOne(db: AnyDatabase, where: ReturnType<typeof eq>): Promise<GatewayChute | null> {
  const [row] = await db
    .select(columns)
    .from(chutes)
    .innerJoin(images, eq(images.imageId, chutes.imageId))
    .where(where)
    .limit(1);
  return row ? toGatewayChute(row as unknown as Row) : null;
}

/**
 * Lookups take the request's dependencies rather than a database: a hit must not open one
 * (`RequestDeps.db` opens a pool on first access, which costs a warm call more than the rest
 * of its routing).
 */
type Lazy = { readonly db: AnyDatabase };

export function chuteBySlug(deps: Lazy, slug: string, ttlMs: number): Promise<GatewayChute | null> {
  const key = slug.toLowerCase();
  return cached(`slug:${key}`, ttlMs, () => selectOne(deps.db, eq(chutes.slug, key)));
}

export function chuteById(deps: Lazy, chuteId: string, ttlMs: number): Promise<GatewayChute | null> {
  const key = chuteId.toLowerCase();
  if (!/^[0-9a-f-]{36}$/.test(key)) return Promise.resolve(null);
  return cached(`id:${key}`, ttlMs, () => selectOne(deps.db, eq(chutes.chuteId, key)));
}

/**
 * The template chute (vLLM by default) serving `model` for `viewerId` (`llm.` routing): the viewer's own first,
 * then the most invoked, then the oldest, among those the viewer may invoke.
 */
export function chuteByModel(
  deps: Lazy,
  model: string,
  viewerId: string,
  ttlMs: number,
  templates: readonly string[] = ["vllm"],
): Promise<GatewayChute | null> {
  return cached(`model:${templates.join(",")}:${viewerId}:${model}`, ttlMs, async () => {
    const [row] = await deps.db
      .select(columns)
      .from(chutes)
      .innerJoin(images, eq(images.imageId, chutes.imageId))
      .where(
        and(
          inArray(chutes.standardTemplate, [...templates]),
          eq(chutes.name, model),
          sql`(${chutes.public} or ${chutes.userId} = ${viewerId} or exists (select 1 from ${chuteShares}
            where ${chuteShares.chuteId} = ${chutes.chuteId} and ${chuteShares.userId} = ${viewerId}))`,
        ),
      )
      .orderBy(sql`${chutes.userId} = ${viewerId} desc`, sql`${chutes.invocationCount} desc`, chutes.createdAt)
      .limit(1);
    return row ? toGatewayChute(row as unknown as Row) : null;
  });
}

/** The vLLM chutes `viewerId` may invoke, for `GET /v1/models` (not cached: a listing). */
export async function llmChutes(
  db: AnyDatabase,
  viewerId: string,
): Promise<{ name: string; createdAt: Date; userId: string }[]> {
  return db
    .select({ name: chutes.name, createdAt: chutes.createdAt, userId: chutes.userId })
    .from(chutes)
    .where(
      and(
        eq(chutes.standardTemplate, "vllm"),
        sql`(${chutes.public} or ${chutes.userId} = ${viewerId} or exists (select 1 from ${chuteShares}
          where ${chuteShares.chuteId} = ${chutes.chuteId} and ${chuteShares.userId} = ${viewerId}))`,
      ),
    )
    .orderBy(chutes.name)
    .limit(1000);
}

/** Whether `userId` may invoke the chute: public, their own, or shared with them. */
export function canInvoke(chute: GatewayChute, userId: string): boolean {
  return chute.public || chute.userId === userId || chute.sharedWith.includes(userId);
}
