/**
 * @module Logos: small images users attach to images and chutes, stored in R2 under
 * `logos/{user_id}/{logo_id}.{ext}` and served publicly at `/logos/{logo_id}.{ext}`.
 *
 * The type is decided by the file's magic bytes (PNG, JPEG, WebP), never by what the
 * client declares. Upstream re-encoded every logo to a 128×128 WebP; the Workers runtime
 * has no image codec, so logos are stored as uploaded, under a size limit. A logo never
 * changes once stored (a new upload is a new id), so it is served as immutable.
 */
import { and, eq } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { logos } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";

export const LOGO_MAX_BYTES = 1024 * 1024;

export interface LogoType {
  ext: "png" | "jpg" | "webp";
  contentType: string;
}

const startsWith = (bytes: Uint8Array, prefix: number[], at = 0) => prefix.every((b, i) => bytes[at + i] === b);

/** The image type `bytes` really are, or null for anything but PNG, JPEG and WebP. */
export function sniffLogo(bytes: Uint8Array): LogoType | null {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
    return { ext: "png", contentType: "image/png" };
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return { ext: "jpg", contentType: "image/jpeg" };
  // RIFF….WEBP
  if (startsWith(bytes, [0x52, 0x49, 0x46, 0x46]) && startsWith(bytes, [0x57, 0x45, 0x42, 0x50], 8)) {
    return { ext: "webp", contentType: "image/webp" };
  }
  return null;
}

/** The public path of a logo stored under `objectKey` (its extension is the stored type's). */
export function logoPath(logoId: string, objectKey: string): string {
  return `/logos/${logoId}.${objectKey.slice(objectKey.lastIndexOf(".") + 1)}`;
}

export interface LogoDeps {
  db: Database;
  bucket: R2Bucket;
}

/** Stores a logo (R2 first, then its row; the object is removed if the row cannot be written). */
export async function createLogo(
  deps: LogoDeps,
  userId: string,
  bytes: Uint8Array,
  type: LogoType,
): Promise<{ logoId: string; path: string }> {
  const logoId = crypto.randomUUID();
  const objectKey = `logos/${userId}/${logoId}.${type.ext}`;
  await deps.bucket.put(objectKey, bytes, { httpMetadata: { contentType: type.contentType } });
  try {
    await deps.db.insert(logos).values({ logoId, userId, objectKey, contentType: type.contentType });
  } catch (error) {
    await deps.bucket.delete(objectKey);
    throw error;
  }
  return { logoId, path: logoPath(logoId, objectKey) };
}

export async function findLogo(db: Database, logoId: string): Promise<{ objectKey: string } | null> {
  const [row] = await db.select({ objectKey: logos.objectKey }).from(logos).where(eq(logos.logoId, logoId));
  return row ?? null;
}

/** Whether `logoId` is one of the user's logos (only those can be attached). */
export async function ownsLogo(db: AnyDatabase, userId: string, logoId: string): Promise<boolean> {
  const rows = await db
    .select({ logoId: logos.logoId })
    .from(logos)
    .where(and(eq(logos.logoId, logoId), eq(logos.userId, userId)));
  return rows.length > 0;
}
