/**
 * @module Chutes: deploying (create or redeploy), finding, listing, editing, sharing and
 * deleting, and the lookups the gateway routes by (slug, template + model name).
 *
 * - Ids are the SDK's: chute_id = uuid5("{username}::chute::{name}"), version =
 *   uuid5("{image_id}:{code}"); the username is the caller's (the CLI does not send it).
 * - The slug (`{username}-{name}`, lower-cased, runs of anything else turned into one `-`,
 *   trimmed, at most 57 characters) is the chute's subdomain: unique, a DNS label, never a
 *   fixed host label; a taken or reserved one gets `-` and 5 random characters (≤ 63).
 * - Visibility: a chute is seen by its owner, by the users it is shared with, and by
 *   everyone when public. Anything else is "not found", never "forbidden", so private
 *   names do not leak. Mutations are the owner's alone.
 * - Deploying a chute whose name the user already has is a redeploy: its instances are
 *   retired (miners are told by `chute_updated`) and everything but the id, name and slug
 *   is replaced. The same code on the same image with the same visibility is a conflict.
 */
import { and, count, desc, eq, ilike, inArray, isNull, or, type SQL, sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { uniqueViolation } from "../db/errors.ts";
import { containing } from "../db/patterns.ts";
import { bounties, chuteShares, chutes, images, instanceAudit, instances, logos, users } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";
import { FIXED_HOST_LABELS, SLUG_LABEL } from "../hosts/classify.ts";
import { randomAlphanumeric } from "../lib/crypto.ts";
import { isUuid, uuid5 } from "../lib/ids.ts";
import type { Cord } from "../schemas/cords.ts";
import type { NodeSelector } from "./gpus.ts";
import { findImage, type ImageView, imageStatusLabel, imagesById, type Viewer } from "./images.ts";
import { logoPath, ownsLogo } from "./logos.ts";

export type ChuteRow = typeof chutes.$inferSelect;

export function chuteIdFor(username: string, name: string): Promise<string> {
  return uuid5(`${username}::chute::${name}`);
}

export function chuteVersionFor(imageId: string, code: string): Promise<string> {
  return uuid5(`${imageId}:${code}`);
}

const SLUG_BASE_MAX = 57;

/** `alice` + `My Chute!` → `alice-my-chute`. */
export function slugBase(username: string, name: string): string {
  return `${username}-${name}`
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+/, "")
    .slice(0, SLUG_BASE_MAX)
    .replace(/-+$/, "");
}

const withSuffix = (base: string) => `${base ? `${base}-` : ""}${randomAlphanumeric(5).toLowerCase()}`;

/** Whether a slug could be served as is (a DNS label that names no part of the platform). */
const usableSlug = (slug: string) => SLUG_LABEL.test(slug) && !FIXED_HOST_LABELS.includes(slug);

/** Chutes `viewerId` may see (null: an anonymous caller, who sees public chutes only). */
function visibleTo(viewerId: string | null): SQL {
  if (!viewerId) return eq(chutes.public, true);
  return or(eq(chutes.public, true), eq(chutes.userId, viewerId), sharedWith(viewerId)) as SQL;
}

const sharedWith = (userId: string) =>
  sql`exists (select 1 from ${chuteShares} where ${chuteShares.chuteId} = ${chutes.chuteId} and ${chuteShares.userId} = ${userId})`;

/**
 * The chute `ref` names, if `viewer` may see it. `ref` is tried, in this order, as a
 * chute id, the name of one of the viewer's chutes, a slug, and `username/name`; the first
 * kind that matches wins (upstream left the choice to chance).
 */
export async function findChute(db: Database, viewer: Viewer | null, ref: string): Promise<ChuteRow | null> {
  const trimmed = ref.replace(/^\/+/, "");
  const lower = trimmed.toLowerCase();
  type Row = { chute: ChuteRow; username: string };
  const ways: { condition: SQL; matches: (row: Row) => boolean }[] = [];
  if (isUuid(trimmed)) {
    ways.push({ condition: eq(chutes.chuteId, lower), matches: ({ chute }) => chute.chuteId === lower });
  }
  if (viewer) {
    ways.push({
      condition: and(eq(chutes.userId, viewer.userId), eq(chutes.name, trimmed)) as SQL,
      matches: ({ chute }) => chute.userId === viewer.userId && chute.name === trimmed,
    });
  }
  if (SLUG_LABEL.test(lower))
    ways.push({ condition: eq(chutes.slug, lower), matches: ({ chute }) => chute.slug === lower });
  const [, owner, name] = /^([A-Za-z0-9_]{3,15})\/(.+)$/.exec(trimmed) ?? [];
  if (owner && name) {
    ways.push({
      condition: and(eq(users.username, owner), eq(chutes.name, name)) as SQL,
      matches: (row) => row.username === owner && row.chute.name === name,
    });
  }
  if (ways.length === 0) return null;
  const rows: Row[] = await db
    .select({ chute: chutes, username: users.username })
    .from(chutes)
    .innerJoin(users, eq(users.userId, chutes.userId))
    .where(and(visibleTo(viewer?.userId ?? null), or(...ways.map((way) => way.condition))))
    .limit(8);
  for (const way of ways) {
    const hit = rows.find(way.matches);
    if (hit) return hit.chute;
  }
  return null;
}

/** One of the user's own chutes (null for other users' chutes, visible or not). */
async function findOwnChute(db: Database, user: Viewer, ref: string): Promise<ChuteRow | null> {
  const chute = await findChute(db, user, ref);
  return chute?.userId === user.userId ? chute : null;
}

/** A chute by its slug (the `{slug}.` host), if `viewerId` may use it. */
export async function findChuteBySlug(db: Database, slug: string, viewerId: string | null): Promise<ChuteRow | null> {
  const [row] = await db
    .select()
    .from(chutes)
    .where(and(eq(chutes.slug, slug.toLowerCase()), visibleTo(viewerId)));
  return row ?? null;
}

/**
 * The template chute serving `name` (for `llm.`: the vLLM chute whose name is the request's
 * `model`) that `viewerId` may use, preferring the viewer's own, then the most invoked,
 * then the oldest. Served by the `chutes_template_name_idx` index.
 */
export async function findTemplateChute(
  db: Database,
  template: string,
  name: string,
  viewerId: string | null,
): Promise<ChuteRow | null> {
  const [row] = await db
    .select()
    .from(chutes)
    .where(and(eq(chutes.standardTemplate, template), eq(chutes.name, name), visibleTo(viewerId)))
    .orderBy(
      desc(viewerId ? sql`${chutes.userId} = ${viewerId}` : sql`false`),
      desc(chutes.invocationCount),
      chutes.createdAt,
    )
    .limit(1);
  return row ?? null;
}

export interface DeployInput {
  name: string;
  tagline: string;
  readme: string;
  toolDescription: string | null;
  logoId: string | null;
  /** An image id or `[username/]name:tag`. */
  image: string;
  public: boolean;
  code: string;
  filename: string;
  refStr: string;
  standardTemplate: string | null;
  nodeSelector: NodeSelector;
  cords: Cord[];
}

export type DeployResult =
  | { ok: true; chute: ChuteRow; created: true }
  | { ok: true; chute: ChuteRow; created: false; oldVersion: string }
  | { ok: false; reason: "image_not_found" | "logo_not_found" | "name_taken"; detail: string }
  | { ok: false; reason: "image_not_built" | "image_private" | "unchanged"; detail: string };

/** Marks the chute's live instances deleted in the audit trail and removes them. */
async function retireInstances(tx: AnyDatabase, chuteId: string, reason: string): Promise<void> {
  await tx
    .update(instanceAudit)
    .set({ deletedAt: sql`now()`, deletionReason: reason })
    .where(and(eq(instanceAudit.chuteId, chuteId), isNull(instanceAudit.deletedAt)));
  await tx.delete(instances).where(eq(instances.chuteId, chuteId));
}

/** Tries slugs until one is free: the base, then suffixed ones. */
async function insertWithFreeSlug(
  tx: AnyDatabase,
  values: typeof chutes.$inferInsert,
  base: string,
): Promise<ChuteRow> {
  for (let attempt = 0; ; attempt++) {
    const slug = attempt === 0 && usableSlug(base) ? base : withSuffix(base);
    try {
      // A savepoint: a taken slug fails only this insert, not the deploy's transaction.
      const [row] = await tx.transaction((sp) =>
        sp
          .insert(chutes)
          .values({ ...values, slug })
          .returning(),
      );
      if (row) return row;
    } catch (error) {
      if (uniqueViolation(error) !== "chutes_slug_key" || attempt >= 8) throw error;
    }
  }
}

/**
 * Creates or redeploys the user's chute named `input.name` on a built image the user may
 * see, in one transaction (a redeploy retires its instances; a creation opens its
 * bounty, as upstream's insert trigger did).
 */
export async function deployChute(db: Database, user: Viewer, input: DeployInput): Promise<DeployResult> {
  const image = await findImage(db, user, input.image);
  if (!image) {
    return {
      ok: false,
      reason: "image_not_found",
      detail: `Chute image not found, or does not belong to you: ${input.image}`,
    };
  }
  const unusable = imageProblem(image, input.public);
  if (unusable) return unusable;
  if (input.logoId && !(await ownsLogo(db, user.userId, input.logoId))) {
    return { ok: false, reason: "logo_not_found", detail: `Logo ${input.logoId} not found, or does not belong to you` };
  }
  const version = await chuteVersionFor(image.imageId, input.code);
  const [existing] = await db
    .select()
    .from(chutes)
    .where(and(eq(chutes.userId, user.userId), sql`lower(${chutes.name}) = lower(${input.name})`));
  if (existing && existing.name !== input.name) {
    return {
      ok: false,
      reason: "name_taken",
      detail: `You already have a chute named ${existing.name}; names differing only in case are the same chute`,
    };
  }
  if (existing && existing.version === version && existing.public === input.public) {
    return {
      ok: false,
      reason: "unchanged",
      detail: `Chute with name=${input.name}, version=${version} and public=${input.public} already exists`,
    };
  }
  const fields = {
    tagline: input.tagline,
    readme: input.readme,
    toolDescription: input.toolDescription,
    imageId: image.imageId,
    logoId: input.logoId,
    public: input.public,
    standardTemplate: input.standardTemplate,
    cords: input.cords,
    nodeSelector: input.nodeSelector,
    code: input.code,
    filename: input.filename,
    refStr: input.refStr,
    version,
    chutesVersion: image.chutesVersion,
  };
  try {
    return await db.transaction(async (tx) => {
      if (existing) {
        await retireInstances(tx, existing.chuteId, "chute redeployed");
        const [row] = await tx
          .update(chutes)
          .set({ ...fields, updatedAt: sql`now()` })
          .where(eq(chutes.chuteId, existing.chuteId))
          .returning();
        if (!row) throw new Error(`chute ${existing.chuteId} vanished during its redeploy`);
        return { ok: true, chute: row, created: false, oldVersion: existing.version } as const;
      }
      const chuteId = await chuteIdFor(user.username, input.name);
      const values = { ...fields, chuteId, userId: user.userId, name: input.name, slug: "" };
      const row = await insertWithFreeSlug(tx, values, slugBase(user.username, input.name));
      await tx.insert(bounties).values({ chuteId });
      return { ok: true, chute: row, created: true } as const;
    });
  } catch (error) {
    // A concurrent deploy of the same name got there first.
    const constraint = uniqueViolation(error);
    if (constraint === "chutes_pkey" || constraint === "chutes_user_name_key") {
      return { ok: false, reason: "unchanged", detail: `Chute ${input.name} was deployed concurrently; retry` };
    }
    throw error;
  }
}

function imageProblem(image: ImageView, makePublic: boolean): DeployResult | null {
  if (image.status !== "built") {
    const status = imageStatusLabel(image.status, image.buildError);
    return {
      ok: false,
      reason: "image_not_built",
      detail: `Image ${image.owner.username}/${image.name}:${image.tag} is not built (status: ${status}); deploy once it is built and pushed`,
    };
  }
  if (makePublic && !image.public) {
    return { ok: false, reason: "image_private", detail: "Chute cannot be public when image is not public!" };
  }
  return null;
}

export interface ChuteInstanceView {
  instanceId: string;
  region: string;
  active: boolean;
  verified: boolean;
  lastVerifiedAt: Date | null;
}

export interface ChuteView {
  chute: ChuteRow;
  owner: { userId: string; username: string; createdAt: Date };
  image: ImageView;
  /** `/logos/{id}.{ext}`, or null. */
  logo: string | null;
  instances: ChuteInstanceView[];
}

/** Everything a chute response shows, for several chutes in a few queries. */
export async function chuteViews(db: Database, rows: ChuteRow[]): Promise<ChuteView[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((row) => row.chuteId);
  const logoIds = rows.flatMap((row) => (row.logoId ? [row.logoId] : []));
  const [imageMap, owners, logoRows, instanceRows] = await Promise.all([
    imagesById(
      db,
      rows.map((row) => row.imageId),
    ),
    db
      .select({ userId: users.userId, username: users.username, createdAt: users.createdAt })
      .from(users)
      .where(inArray(users.userId, [...new Set(rows.map((row) => row.userId))])),
    logoIds.length > 0
      ? db
          .select({ logoId: logos.logoId, objectKey: logos.objectKey })
          .from(logos)
          .where(inArray(logos.logoId, logoIds))
      : [],
    db
      .select({
        chuteId: instances.chuteId,
        instanceId: instances.instanceId,
        region: instances.region,
        active: instances.active,
        verified: instances.verified,
        lastVerifiedAt: instances.lastVerifiedAt,
      })
      .from(instances)
      .where(inArray(instances.chuteId, ids))
      .orderBy(instances.createdAt),
  ]);
  return rows.map((chute) => {
    const image = imageMap.get(chute.imageId);
    const owner = owners.find((user) => user.userId === chute.userId);
    if (!image || !owner) throw new Error(`chute ${chute.chuteId} has no image or owner row`);
    const logo = logoRows.find((row) => row.logoId === chute.logoId);
    return {
      chute,
      owner,
      image,
      logo: logo ? logoPath(logo.logoId, logo.objectKey) : null,
      instances: instanceRows
        .filter((row) => row.chuteId === chute.chuteId)
        .map(({ chuteId: _, ...instance }) => instance),
    };
  });
}

export interface ListChutesQuery {
  includePublic: boolean;
  template?: string;
  name?: string;
  image?: string;
  slug?: string;
  page: number;
  limit: number;
}

/**
 * Chutes for a list: anonymous callers see public chutes; users see their own and those
 * shared with them, plus public ones with `includePublic`. Most invoked first.
 */
export async function listChutes(
  db: Database,
  viewerId: string | null,
  query: ListChutesQuery,
): Promise<{ total: number; items: ChuteRow[] }> {
  const scope = !viewerId
    ? eq(chutes.public, true)
    : query.includePublic
      ? visibleTo(viewerId)
      : or(eq(chutes.userId, viewerId), sharedWith(viewerId));
  const imagePattern = query.image ? containing(query.image) : null;
  const where = and(
    scope,
    query.name ? ilike(chutes.name, containing(query.name)) : undefined,
    query.slug ? eq(chutes.slug, query.slug.toLowerCase()) : undefined,
    query.template === "other"
      ? isNull(chutes.standardTemplate)
      : query.template
        ? eq(chutes.standardTemplate, query.template)
        : undefined,
    imagePattern
      ? inArray(
          chutes.imageId,
          db
            .select({ imageId: images.imageId })
            .from(images)
            .where(or(ilike(images.name, imagePattern), ilike(images.tag, imagePattern))),
        )
      : undefined,
  );
  const [totals, items] = await Promise.all([
    db.select({ total: count() }).from(chutes).where(where),
    db
      .select()
      .from(chutes)
      .where(where)
      .orderBy(desc(chutes.invocationCount), desc(chutes.createdAt), chutes.chuteId)
      .limit(query.limit)
      .offset(query.page * query.limit),
  ]);
  return { total: totals[0]?.total ?? 0, items };
}

export interface ChuteEdits {
  tagline?: string | null;
  readme?: string | null;
  toolDescription?: string | null;
  logoId?: string | null;
}

export type UpdateChuteResult = { ok: true; chute: ChuteRow } | { ok: false; reason: "not_found" | "logo_not_found" };

/** Edits the owner's chute's descriptive fields; blank or absent values leave a field as it is. */
export async function updateChute(
  db: Database,
  user: Viewer,
  ref: string,
  edits: ChuteEdits,
): Promise<UpdateChuteResult> {
  const chute = await findOwnChute(db, user, ref);
  if (!chute) return { ok: false, reason: "not_found" };
  if (edits.logoId && !(await ownsLogo(db, user.userId, edits.logoId))) return { ok: false, reason: "logo_not_found" };
  const given = (value: string | null | undefined) => (value?.trim() ? value : undefined);
  const [row] = await db
    .update(chutes)
    .set({
      tagline: given(edits.tagline),
      readme: given(edits.readme),
      toolDescription: given(edits.toolDescription),
      logoId: given(edits.logoId),
      updatedAt: sql`now()`,
    })
    .where(and(eq(chutes.chuteId, chute.chuteId), eq(chutes.userId, user.userId)))
    .returning();
  return row ? { ok: true, chute: row } : { ok: false, reason: "not_found" };
}

/**
 * Deletes the owner's chute; its instances, shares and bounty go with it (foreign keys),
 * and the audit trail records the instances' end. Null when the user has no such chute.
 */
export async function deleteChute(db: Database, user: Viewer, ref: string): Promise<ChuteRow | null> {
  const chute = await findOwnChute(db, user, ref);
  if (!chute) return null;
  return db.transaction(async (tx) => {
    await retireInstances(tx, chute.chuteId, "chute deleted");
    const [row] = await tx
      .delete(chutes)
      .where(and(eq(chutes.chuteId, chute.chuteId), eq(chutes.userId, user.userId)))
      .returning();
    return row ?? null;
  });
}

export type ShareResult =
  | { ok: true; chuteId: string; userId: string; changed: boolean }
  | { ok: false; reason: "chute_not_found" | "user_not_found" | "self" };

/** Shares the owner's chute with another user (by id or username), or stops sharing it. */
export async function setChuteShare(
  db: Database,
  owner: Viewer,
  chuteRef: string,
  userRef: string,
  shared: boolean,
): Promise<ShareResult> {
  const chute = await findOwnChute(db, owner, chuteRef);
  if (!chute) return { ok: false, reason: "chute_not_found" };
  const [target] = await db
    .select({ userId: users.userId })
    .from(users)
    .where(isUuid(userRef) ? eq(users.userId, userRef.toLowerCase()) : eq(users.username, userRef));
  if (!target) return { ok: false, reason: "user_not_found" };
  if (target.userId === owner.userId) return { ok: false, reason: "self" };
  const changed = shared
    ? await db
        .insert(chuteShares)
        .values({ chuteId: chute.chuteId, userId: target.userId })
        .onConflictDoNothing()
        .returning({ chuteId: chuteShares.chuteId })
    : await db
        .delete(chuteShares)
        .where(and(eq(chuteShares.chuteId, chute.chuteId), eq(chuteShares.userId, target.userId)))
        .returning({ chuteId: chuteShares.chuteId });
  return { ok: true, chuteId: chute.chuteId, userId: target.userId, changed: changed.length > 0 };
}
