/**
 * @module Images: build contexts uploaded by developers, stored in R2 for the builder, and
 * their catalogue rows.
 *
 * - Ids are the SDK's: uuid5(NAMESPACE_OID, "{username}/{name}:{tag}"), computed on both
 *   sides, never handed out by the server.
 * - R2 layout (upstream's): `forge/{user_id}/{image_id}.zip` (the build context as
 *   uploaded), `.Dockerfile` (the developer's Dockerfile plus the line pinning the chutes
 *   SDK) and `.pickle` (the SDK's pickled Image object, kept for the builder, never read here).
 * - Status is `pending` → `building` → `built` | `error` in the table; the API speaks
 *   upstream's strings (`imageStatusLabel`), which the CLI compares literally. The upload
 *   queues the image's build in its transaction (src/services/builds.ts).
 * - References: an id, or `[username/]name:tag` (the caller's own when no username).
 *   Everyone sees public images and their own; no one else's.
 */
import { and, count, desc, eq, ilike, inArray, or, type SQL } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { foreignKeyViolation } from "../db/errors.ts";
import { containing } from "../db/patterns.ts";
import { chutes, type IMAGE_STATUSES, images, logos, users } from "../db/schema.ts";
import { isUuid, uuid5 } from "../lib/ids.ts";
import { enqueueBuild } from "./builds.ts";
import { logoPath, ownsLogo } from "./logos.ts";

export type ImageStatus = (typeof IMAGE_STATUSES)[number];

/** The status string the API reports (upstream's), which `chutes deploy` compares to `built and pushed`. */
export function imageStatusLabel(status: ImageStatus, buildError: string | null): string {
  switch (status) {
    case "pending":
      return "pending build";
    case "building":
      return "building";
    case "built":
      return "built and pushed";
    case "error":
      return `error: ${buildError ?? "unknown"}`;
  }
}

export function imageIdFor(username: string, name: string, tag: string): Promise<string> {
  return uuid5(`${username}/${name}:${tag}`);
}

/** The R2 keys of an image's build inputs and of its build log (written when the build ends). */
export function imageObjectKeys(userId: string, imageId: string) {
  const base = `forge/${userId}/${imageId}`;
  return { context: `${base}.zip`, dockerfile: `${base}.Dockerfile`, pickle: `${base}.pickle`, log: `${base}.log` };
}

/** What the SDK pins in every image it builds (upstream appends the same line). */
export function pinnedDockerfile(dockerfile: string, chutesVersion: string): string {
  return `${dockerfile}\n\nRUN pip install --upgrade chutes==${chutesVersion}\n`;
}

export interface ImageView {
  imageId: string;
  userId: string;
  name: string;
  tag: string;
  readme: string;
  public: boolean;
  status: ImageStatus;
  buildError: string | null;
  chutesVersion: string | null;
  createdAt: Date;
  buildStartedAt: Date | null;
  buildCompletedAt: Date | null;
  logoId: string | null;
  /** `/logos/{id}.{ext}`, or null. */
  logo: string | null;
  owner: { userId: string; username: string; createdAt: Date };
}

const imageColumns = {
  imageId: images.imageId,
  userId: images.userId,
  name: images.name,
  tag: images.tag,
  readme: images.readme,
  public: images.public,
  status: images.status,
  buildError: images.buildError,
  chutesVersion: images.chutesVersion,
  createdAt: images.createdAt,
  buildStartedAt: images.buildStartedAt,
  buildCompletedAt: images.buildCompletedAt,
  logoId: images.logoId,
  logoKey: logos.objectKey,
  ownerName: users.username,
  ownerCreatedAt: users.createdAt,
};

function selectImages(db: Database, where: SQL | undefined) {
  return db
    .select(imageColumns)
    .from(images)
    .innerJoin(users, eq(users.userId, images.userId))
    .leftJoin(logos, eq(logos.logoId, images.logoId))
    .where(where);
}

type ImageRow = Awaited<ReturnType<typeof selectImages>>[number];

function toView(row: ImageRow): ImageView {
  const { logoKey, ownerName, ownerCreatedAt, ...image } = row;
  return {
    ...image,
    logo: image.logoId && logoKey ? logoPath(image.logoId, logoKey) : null,
    owner: { userId: image.userId, username: ownerName, createdAt: ownerCreatedAt },
  };
}

/** Images a user may see: public ones and their own. */
const visibleTo = (userId: string) => or(eq(images.public, true), eq(images.userId, userId));

/** How `ref` names an image: by id, or by `[username/]name:tag`. */
function refCondition(ref: string, viewerName: string): SQL | null {
  const trimmed = ref.replace(/^\/+/, "");
  const named = /^(?:([^/:]+)\/)?([^/:]+):([^/:]+)$/.exec(trimmed);
  if (named) {
    const [, username, name, tag] = named;
    return (
      and(eq(users.username, username ?? viewerName), eq(images.name, name ?? ""), eq(images.tag, tag ?? "")) ?? null
    );
  }
  return isUuid(trimmed) ? eq(images.imageId, trimmed.toLowerCase()) : null;
}

export interface Viewer {
  userId: string;
  username: string;
}

/** The image `ref` names, if `viewer` may see it. */
export async function findImage(db: Database, viewer: Viewer, ref: string): Promise<ImageView | null> {
  const match = refCondition(ref, viewer.username);
  if (!match) return null;
  const [row] = await selectImages(db, and(match, visibleTo(viewer.userId))).limit(1);
  return row ? toView(row) : null;
}

export async function imagesById(db: Database, imageIds: string[]): Promise<Map<string, ImageView>> {
  if (imageIds.length === 0) return new Map();
  const rows = await selectImages(db, inArray(images.imageId, [...new Set(imageIds)]));
  return new Map(rows.map((row) => [row.imageId, toView(row)]));
}

export interface ListImagesQuery {
  includePublic: boolean;
  name?: string;
  tag?: string;
  page: number;
  limit: number;
}

/** The user's images (and public ones when asked), newest first; name and tag match as substrings. */
export async function listImages(
  db: Database,
  viewer: Viewer,
  query: ListImagesQuery,
): Promise<{ total: number; items: ImageView[] }> {
  const where = and(
    query.includePublic ? visibleTo(viewer.userId) : eq(images.userId, viewer.userId),
    query.name ? ilike(images.name, containing(query.name)) : undefined,
    query.tag ? ilike(images.tag, containing(query.tag)) : undefined,
  );
  const [totals, rows] = await Promise.all([
    db.select({ total: count() }).from(images).where(where),
    selectImages(db, where)
      .orderBy(desc(images.createdAt), images.imageId)
      .limit(query.limit)
      .offset(query.page * query.limit),
  ]);
  return { total: totals[0]?.total ?? 0, items: rows.map((row) => toView(row)) };
}

/** Numeric parts of a tag (`0.7.2` → [0, 7, 2]), for "newest version" ordering. */
function versionParts(tag: string): number[] {
  return tag
    .split(/[^0-9]+/)
    .filter(Boolean)
    .map(Number);
}

function compareVersions(a: string, b: string): number {
  const [x, y] = [versionParts(a), versionParts(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const diff = (x[i] ?? -1) - (y[i] ?? -1);
    if (diff !== 0) return diff;
  }
  return a.localeCompare(b);
}

/**
 * The newest built public image `{owner}/{name}` (highest version tag), e.g. the platform's
 * `chutes/vllm` for the vLLM template; null when there is none.
 */
export async function newestPublicImage(db: Database, owner: string, name: string): Promise<ImageView | null> {
  const rows = await selectImages(
    db,
    and(eq(users.username, owner), eq(images.name, name), eq(images.public, true), eq(images.status, "built")),
  );
  const newest = rows.sort((a, b) => compareVersions(b.tag, a.tag))[0];
  return newest ? toView(newest) : null;
}

export interface CreateImageInput {
  user: Viewer;
  name: string;
  tag: string;
  readme: string;
  public: boolean;
  logoId: string | null;
  /** The Dockerfile as it will be built (already pinned). */
  dockerfile: string;
  /** The zip as uploaded. */
  context: Uint8Array;
  /** The SDK's pickled Image object, if sent. */
  pickle: Uint8Array | null;
  chutesVersion: string;
  /** Claims of its build before a lapse fails it (`BUILD_MAX_ATTEMPTS`). */
  buildAttempts: number;
}

export type CreateImageResult =
  | { ok: true; image: ImageView }
  | { ok: false; reason: "exists" | "logo_not_found"; imageId: string };

/**
 * Creates the image row and stores its build inputs, all or nothing: the row is inserted
 * first inside a transaction (a concurrent upload of the same image waits on it and then
 * finds it taken, writing nothing), the objects are written, and only then is the row
 * committed; if any write fails the row is rolled back and the objects already written
 * are removed (safe: the uncommitted row still reserves the id).
 */
export async function createImage(
  deps: { db: Database; bucket: R2Bucket },
  input: CreateImageInput,
): Promise<CreateImageResult> {
  const imageId = await imageIdFor(input.user.username, input.name, input.tag);
  const keys = imageObjectKeys(input.user.userId, imageId);
  const written: string[] = [];
  const outcome = await deps.db
    .transaction(async (tx) => {
      if (input.logoId && !(await ownsLogo(tx, input.user.userId, input.logoId))) return "logo_not_found" as const;
      const inserted = await tx
        .insert(images)
        .values({
          imageId,
          userId: input.user.userId,
          name: input.name,
          tag: input.tag,
          readme: input.readme,
          public: input.public,
          logoId: input.logoId,
          chutesVersion: input.chutesVersion,
        })
        .onConflictDoNothing()
        .returning({ imageId: images.imageId });
      if (inserted.length === 0) return "exists" as const;
      await enqueueBuild(tx, imageId, input.buildAttempts);
      const put = async (key: string, value: Uint8Array | string, contentType: string) => {
        written.push(key);
        await deps.bucket.put(key, value, { httpMetadata: { contentType } });
      };
      await put(keys.context, input.context, "application/zip");
      await put(keys.dockerfile, input.dockerfile, "text/plain; charset=utf-8");
      if (input.pickle) await put(keys.pickle, input.pickle, "application/octet-stream");
      return "created" as const;
    })
    .catch(async (error: unknown) => {
      if (written.length > 0) await deps.bucket.delete(written).catch(() => undefined);
      throw error;
    });
  if (outcome !== "created") return { ok: false, reason: outcome, imageId };
  const image = await findImage(deps.db, input.user, imageId);
  if (!image) throw new Error(`image ${imageId} vanished after it was created`);
  return { ok: true, image };
}

export type DeleteImageResult =
  | { status: "deleted"; image: ImageView }
  | { status: "not_found" }
  | { status: "in_use"; chuteNames: string[] };

/**
 * Deletes one of the user's images and its build inputs. An image a chute still runs is
 * refused (the chutes' foreign key makes this race-free: a chute deployed meanwhile makes
 * the delete fail rather than dangle).
 */
export async function deleteImage(
  deps: { db: Database; bucket: R2Bucket },
  user: Viewer,
  ref: string,
): Promise<DeleteImageResult> {
  const image = await findImage(deps.db, user, ref);
  if (!image || image.userId !== user.userId) return { status: "not_found" };
  const chuteNames = async () =>
    (
      await deps.db
        .select({ name: chutes.name })
        .from(chutes)
        .where(eq(chutes.imageId, image.imageId))
        .orderBy(chutes.name)
        .limit(10)
    ).map((row) => row.name);
  const inUse = await chuteNames();
  if (inUse.length > 0) return { status: "in_use", chuteNames: inUse };
  try {
    await deps.db.delete(images).where(and(eq(images.imageId, image.imageId), eq(images.userId, user.userId)));
  } catch (error) {
    if (foreignKeyViolation(error)) return { status: "in_use", chuteNames: await chuteNames() };
    throw error;
  }
  const keys = imageObjectKeys(image.userId, image.imageId);
  await deps.bucket.delete([keys.context, keys.dockerfile, keys.pickle, keys.log]);
  return { status: "deleted", image };
}
