/**
 * @module Request schemas of the `/images` routes: the text fields of the CLI's multipart
 * build upload (upstream-sdk.md §3.1) and the list query.
 *
 * Names and tags are the intersection of what the SDK allows (`^[a-z0-9][a-z0-9-_.]*$`)
 * and what upstream's server allowed (3–65 and 2–33 characters), without `/` (which would
 * make `user/name:tag` references ambiguous); names are lower-case because they become
 * registry repository names, which must be.
 */
import { z } from "zod";
import { logoIdField, pagination, textBool, utf8Text } from "./common.ts";
import { USERNAME } from "./users.ts";

export const IMAGE_NAME = /^[a-z0-9][a-z0-9_.-]{2,64}$/;
export const IMAGE_TAG = /^[A-Za-z0-9][A-Za-z0-9_.-]{1,32}$/;

export const README_MAX_CHARS = 16_384;
export const DOCKERFILE_MAX_BYTES = 128 * 1024;
/** The base64 pickle of the SDK's Image object, stored as is for the builder. */
export const IMAGE_PICKLE_MAX_BYTES = 1024 * 1024;

export const imageName = z.string().regex(IMAGE_NAME, {
  message: "must be 3-65 lower-case letters, digits and . _ - starting with a letter or digit",
});
export const imageTag = z.string().regex(IMAGE_TAG, {
  message: "must be 2-33 letters, digits and . _ - starting with a letter or digit",
});

/** The text fields of `POST /images/` (booleans arrive as `True`/`False`). */
export const uploadImageFields = z.object({
  username: z.string().regex(USERNAME, { message: "must be a username" }),
  name: imageName,
  tag: imageTag,
  readme: z.string().max(README_MAX_CHARS).default(""),
  dockerfile: utf8Text(DOCKERFILE_MAX_BYTES).pipe(z.string().min(1)),
  image: z
    .string()
    .max(IMAGE_PICKLE_MAX_BYTES)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, { message: "must be base64" })
    .optional(),
  public: textBool.default(false),
  wait: textBool.default(false),
  logo_id: logoIdField,
});

export const listImagesQuery = z.object({
  include_public: textBool.default(false),
  name: z.string().max(65).optional(),
  tag: z.string().max(33).optional(),
  ...pagination,
});
