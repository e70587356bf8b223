/**
 * @module `/logos`: upload (`POST /logos/`, multipart field `logo`, as the CLI's
 * `build --logo` / `deploy --logo` send it, signed over the whole body) and public,
 * cacheable downloads (`GET /logos/{logo_id}.{ext}`).
 *
 * Downloads are immutable (a logo never changes; a new upload is a new id), carry the
 * object's ETag and answer `If-None-Match` with 304. A request for another extension of
 * an existing logo is redirected to the stored one (upstream served every logo as .webp).
 */
import { Hono } from "hono";
import type { AppEnv } from "../app.ts";
import { requireUser } from "../lib/auth.ts";
import { ApiError } from "../lib/errors.ts";
import { parseMultipartBody } from "../lib/multipart.ts";
import { rawBody } from "../lib/validation.ts";
import { createLogo, findLogo, LOGO_MAX_BYTES, logoPath, sniffLogo } from "../services/logos.ts";

/** A year: logos are immutable. */
const LOGO_CACHE_CONTROL = "public, max-age=31536000, immutable";
/** Room for the multipart framing around the image. */
const LOGO_BODY_MAX_BYTES = LOGO_MAX_BYTES + 16 * 1024;

const LOGO_FILE = /^([0-9a-fA-F-]{36})\.(png|jpg|jpeg|webp)$/;

export const logosRoutes = new Hono<AppEnv>()
  .on("POST", ["/logos", "/logos/"], requireUser({ maxBodyBytes: LOGO_BODY_MAX_BYTES }), async (c) => {
    const parts = parseMultipartBody(c.req.header("content-type"), await rawBody(c));
    const logo = parts.get("logo");
    if (!logo) {
      throw new ApiError("validation_failed", "Invalid request: body.logo: an image file is required", {
        errors: [{ loc: ["body", "logo"], msg: "an image file is required" }],
      });
    }
    if (logo.data.byteLength > LOGO_MAX_BYTES) {
      throw new ApiError("payload_too_large", `Logos may be at most ${LOGO_MAX_BYTES} bytes.`);
    }
    const type = sniffLogo(logo.data);
    if (!type) throw new ApiError("unsupported_media_type", "Uploaded logo is not an image (PNG, JPEG or WebP)!");
    const { logoId, path } = await createLogo(c.var.deps, c.var.auth.user.userId, logo.data, type);
    return c.json({ logo_id: logoId, path });
  })
  .get("/logos/:file", async (c) => {
    const match = LOGO_FILE.exec(c.req.param("file"));
    const logoId = match?.[1]?.toLowerCase();
    const logo = logoId ? await findLogo(c.var.deps.db, logoId) : null;
    if (!logoId || !logo) throw new ApiError("not_found", "Logo not found");
    const canonical = logoPath(logoId, logo.objectKey);
    const ext = match?.[2]?.toLowerCase() === "jpeg" ? "jpg" : match?.[2]?.toLowerCase();
    if (!canonical.endsWith(`.${ext}`)) return c.redirect(canonical, 301);
    const object = await c.var.deps.bucket.get(logo.objectKey, { onlyIf: c.req.raw.headers });
    if (!object) throw new ApiError("not_found", "Logo not found");
    const headers = new Headers();
    object.writeHttpMetadata(headers);
    headers.set("etag", object.httpEtag);
    headers.set("cache-control", LOGO_CACHE_CONTROL);
    // Without a body, R2 says the If-None-Match condition held: the client's copy is current.
    if (!("body" in object)) return new Response(null, { status: 304, headers });
    return new Response(object.body, { headers });
  });
