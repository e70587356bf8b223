/**
 * @module `/images`: the CLI's build upload (`chutes build`), list, get and delete, in
 * upstream's shapes (`ImageResponse`, statuses as upstream's strings). Collections answer
 * on both `/images` and `/images/`.
 *
 * The upload is `multipart/form-data` signed over the SHA-256 of the whole body, so the
 * body is read first (up to `IMAGE_CONTEXT_MAX_BYTES`), hashed for the signature, then
 * parsed from those bytes; it queues the image's build. `wait=True` answers with the
 * build's log as it happens (`data: {"log_type":…,"log":…}` lines, then `DONE`), which is
 * what `chutes build --wait` prints; `GET /images/{ref}/logs` serves the same stream, live
 * or, once the build is over, from its R2 copy.
 */
import { Hono } from "hono";
import { sseLog } from "../../durable-objects/build-log.ts";
import type { AppEnv } from "../app.ts";
import type { Config } from "../env.ts";
import { ensureDeveloper, requireUser, scopeFromPath } from "../lib/auth.ts";
import type { Deps } from "../lib/deps.ts";
import { ApiError } from "../lib/errors.ts";
import { type MultipartPart, parseMultipartBody, partText } from "../lib/multipart.ts";
import { check, pathParams, queryParams, rawBody } from "../lib/validation.ts";
import { objectRef } from "../schemas/common.ts";
import { listImagesQuery, uploadImageFields } from "../schemas/images.ts";
import { buildLog } from "../services/build-logs.ts";
import { builderOnline } from "../services/builders.ts";
import {
  createImage,
  deleteImage,
  findImage,
  type ImageView,
  imageObjectKeys,
  imageStatusLabel,
  listImages,
  pinnedDockerfile,
} from "../services/images.ts";
import { publishMinerEvent } from "../services/miner-events.ts";

const PURPOSE = "images";
const COLLECTION = ["/images", "/images/"];

export function imageResponse(image: ImageView) {
  return {
    image_id: image.imageId,
    name: image.name,
    tag: image.tag,
    readme: image.readme,
    public: image.public,
    status: imageStatusLabel(image.status, image.buildError),
    created_at: image.createdAt.toISOString(),
    build_started_at: image.buildStartedAt?.toISOString() ?? null,
    build_completed_at: image.buildCompletedAt?.toISOString() ?? null,
    user: {
      username: image.owner.username,
      user_id: image.owner.userId,
      created_at: image.owner.createdAt.toISOString(),
    },
    logo_id: image.logoId,
    logo: image.logo,
  };
}

/** Zip archives start with a local file header, or are empty (end of central directory). */
const isZip = (bytes: Uint8Array) =>
  bytes[0] === 0x50 && bytes[1] === 0x4b && ((bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6));

function base64Bytes(text: string): Uint8Array {
  try {
    return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
  } catch {
    throw new ApiError("validation_failed", "Invalid request: body.image: must be base64", {
      errors: [{ loc: ["body", "image"], msg: "must be base64" }],
    });
  }
}

function fileField(parts: Map<string, MultipartPart>, name: string): MultipartPart {
  const part = parts.get(name);
  if (!part || part.filename === null) {
    throw new ApiError("validation_failed", `Invalid request: body.${name}: a file is required`, {
      errors: [{ loc: ["body", name], msg: "a file is required" }],
    });
  }
  return part;
}

/** A builder that made no request for this long is taken to be gone (claims long-poll every ≤ 25 s). */
const BUILDER_SILENCE_MS = 2 * 60_000;
const EVENT_STREAM = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store" };

/**
 * The build log of `image` as the CLI reads it: from R2 once the build is over, else live
 * from the build's log object (which ends it with `DONE` when the build ends). With no
 * builder online a waiting upload would wait indefinitely, so it is told so and ended.
 */
async function logStream(
  { deps, config }: { deps: Deps; config: Config },
  image: ImageView,
  status: number,
): Promise<Response> {
  if (image.status === "built" || image.status === "error") {
    const stored = await deps.bucket.get(imageObjectKeys(image.userId, image.imageId).log);
    const body =
      stored?.body ??
      sseLog([{ log_type: "stdout", log: `status: ${imageStatusLabel(image.status, image.buildError)}` }]);
    return new Response(body, { status, headers: EVENT_STREAM });
  }
  if (
    image.status === "pending" &&
    !(await builderOnline(deps.db, new Date(deps.now().getTime() - BUILDER_SILENCE_MS)))
  ) {
    const log = `image ${image.imageId} is queued (pending build), but no image builder is online: it will be built when one comes back. Follow it with GET /images/${image.imageId}/logs.`;
    return new Response(sseLog([{ log_type: "stdout", log }]), { status, headers: EVENT_STREAM });
  }
  const live = await buildLog(config, image.imageId).fetch(new Request("https://build-log/stream"));
  return new Response(live.body, { status, headers: EVENT_STREAM });
}

export const imagesRoutes = new Hono<AppEnv>()
  .on(
    "POST",
    COLLECTION,
    requireUser({ scope: scopeFromPath, maxBodyBytes: (config) => config.IMAGE_CONTEXT_MAX_BYTES }),
    ensureDeveloper,
    async (c) => {
      const parts = parseMultipartBody(c.req.header("content-type"), await rawBody(c));
      const context = fileField(parts, "build_context");
      const text: Record<string, string> = {};
      for (const [name, part] of parts) if (name !== "build_context") text[name] = partText(part);
      const fields = check(uploadImageFields, text, "body");
      const { user } = c.var.auth;
      if (fields.username !== user.username) {
        throw new ApiError("forbidden", "Cannot make images for users other than yourself!");
      }
      if (!isZip(context.data)) throw new ApiError("bad_request", "build_context must be a zip archive.");
      const result = await createImage(c.var.deps, {
        user,
        name: fields.name,
        tag: fields.tag,
        readme: fields.readme,
        public: fields.public,
        logoId: fields.logo_id,
        dockerfile: pinnedDockerfile(fields.dockerfile, c.var.config.CHUTES_VERSION),
        context: context.data,
        pickle: fields.image ? base64Bytes(fields.image) : null,
        chutesVersion: c.var.config.CHUTES_VERSION,
        buildAttempts: c.var.config.BUILD_MAX_ATTEMPTS,
      });
      if (!result.ok) {
        throw result.reason === "exists"
          ? new ApiError("conflict", `Image with name=${fields.name} and tag=${fields.tag} already exists`)
          : new ApiError("bad_request", `Logo ${fields.logo_id} not found, or does not belong to you`);
      }
      const { image } = result;
      await publishMinerEvent(c.var, {
        reason: "image_created",
        data: {
          image_id: image.imageId,
          name: image.name,
          tag: image.tag,
          username: user.username,
          status: imageStatusLabel(image.status, image.buildError),
        },
      });
      return fields.wait ? logStream(c.var, image, 202) : c.json(imageResponse(image), 202);
    },
  )
  .on("GET", COLLECTION, requireUser({ purpose: PURPOSE, scope: scopeFromPath }), async (c) => {
    const query = queryParams(c, listImagesQuery);
    const { total, items } = await listImages(c.var.deps.db, c.var.auth.user, {
      includePublic: query.include_public,
      name: query.name,
      tag: query.tag,
      page: query.page,
      limit: query.limit,
    });
    return c.json({ total, page: query.page, limit: query.limit, items: items.map(imageResponse) });
  })
  .get("/images/:ref{.+}/logs", requireUser({ purpose: PURPOSE, scope: scopeFromPath }), async (c) => {
    const { ref } = pathParams(c, objectRef);
    const image = await findImage(c.var.deps.db, c.var.auth.user, ref);
    // Build logs can carry what the Dockerfile printed: the owner's only.
    if (!image || image.userId !== c.var.auth.user.userId) {
      throw new ApiError("not_found", "Image not found, or does not belong to you");
    }
    return logStream(c.var, image, 200);
  })
  .get("/images/:ref{.+}", requireUser({ purpose: PURPOSE, scope: scopeFromPath }), async (c) => {
    const { ref } = pathParams(c, objectRef);
    const image = await findImage(c.var.deps.db, c.var.auth.user, ref);
    if (!image) throw new ApiError("not_found", "Image not found, or does not belong to you");
    return c.json(imageResponse(image));
  })
  .delete("/images/:ref{.+}", requireUser({ purpose: PURPOSE, scope: scopeFromPath }), async (c) => {
    const { ref } = pathParams(c, objectRef);
    const result = await deleteImage(c.var.deps, c.var.auth.user, ref);
    if (result.status === "not_found") throw new ApiError("not_found", "Image not found, or does not belong to you");
    if (result.status === "in_use") {
      throw new ApiError(
        "conflict",
        `Image is in use by one or more chutes (${result.chuteNames.join(", ")}): delete them first.`,
      );
    }
    // A later upload of the same name and tag has the same id: its log must start empty.
    await buildLog(c.var.config, result.image.imageId).reset();
    await publishMinerEvent(c.var, { reason: "image_deleted", data: { image_id: result.image.imageId } });
    return c.json({ image_id: result.image.imageId, deleted: true });
  });
