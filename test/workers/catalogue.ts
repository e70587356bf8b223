/**
 * @module The catalogue as the chutes CLI drives it, for the workers lane: build uploads
 * (multipart, signed over the whole body), logo uploads, deploy bodies (compact JSON),
 * and what the future image builder will do to a row (`markImage`), done here by writing
 * the row directly.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { expect } from "vitest";
import { openDatabase } from "../../src/db/client.ts";
import { images } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import { multipartBody } from "../support/chutes-cli.ts";
import { type SignedRequest, sendSigned, type TestUser, uniqueName } from "./accounts.ts";

/** A zip archive's first bytes: a local file header (the rest is not looked at). */
export const ZIP = new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x14, 0, 0, 0, 8, 0, 1, 2, 3, 4, 5, 6]);
export const PNG = new Uint8Array([
  0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52,
]);
export const JPEG = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46]);
export const WEBP = new Uint8Array([0x52, 0x49, 0x46, 0x46, 36, 0, 0, 0, 0x57, 0x45, 0x42, 0x50, 0x56, 0x50, 0x38]);
/** What the CLI sends in the `image` field: base64 of the pickled Image object. */
export const PICKLE_B64 = btoa("\x80\x04\x95fake pickle of chutes.image.Image\x94.");

export const imageName = () => uniqueName("img").toLowerCase().replaceAll("_", "-");

export interface UploadOptions {
  name?: string;
  tag?: string;
  username?: string;
  public?: boolean;
  wait?: boolean;
  logoId?: string | null;
  context?: Uint8Array;
  dockerfile?: string;
  /** Fields to replace or add, as raw text. */
  extra?: Record<string, string>;
}

/** `POST /images/` exactly as `chutes build` lays it out (fields in the CLI's order). */
export function buildUpload(user: TestUser, options: UploadOptions = {}): SignedRequest {
  const text: Record<string, string> = {
    username: options.username ?? user.username,
    name: options.name ?? imageName(),
    tag: options.tag ?? "0.1",
    readme: "# an image",
    dockerfile: options.dockerfile ?? "FROM parachutes/base-python:3.12.7\nRUN pip install numpy\n",
    public: options.public ? "True" : "False",
    wait: options.wait ? "True" : "False",
    logo_id: options.logoId ?? "__none__",
    image: PICKLE_B64,
    ...options.extra,
  };
  const { body, contentType } = multipartBody([
    ...Object.entries(text).map(([name, value]) => ({ name, value })),
    { name: "build_context", value: options.context ?? ZIP, filename: "chute.zip", contentType: "application/zip" },
  ]);
  return { method: "POST", path: "/images/", body, contentType };
}

/** `POST /logos/` as the CLI's `--logo` sends it. */
export function logoUpload(bytes: Uint8Array, declaredType = "image/png"): SignedRequest {
  const { body, contentType } = multipartBody([
    { name: "logo", value: bytes, filename: "logo.png", contentType: declaredType },
  ]);
  return { method: "POST", path: "/logos/", body, contentType };
}

export async function uploadLogo(user: TestUser, bytes: Uint8Array = PNG): Promise<{ logo_id: string; path: string }> {
  const res = await sendSigned(user.hotkey, logoUpload(bytes));
  const body = (await res.json()) as { logo_id: string; path: string };
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body;
}

/** What the image builder will do: set an image's build state on its row. */
export async function markImage(imageId: string, status: "built" | "building" | "error", buildError?: string) {
  const { db, close } = openDatabase(configFor(env));
  try {
    await db
      .update(images)
      .set({ status, buildError: buildError ?? null, buildCompletedAt: status === "building" ? null : new Date() })
      .where(eq(images.imageId, imageId));
  } finally {
    await close();
  }
}

export interface UploadedImage {
  image_id: string;
  name: string;
  tag: string;
  status: string;
  public: boolean;
}

/** Uploads an image for `user` and, unless told otherwise, marks it built. */
export async function builtImage(
  user: TestUser,
  options: UploadOptions & { built?: boolean } = {},
): Promise<UploadedImage> {
  const res = await sendSigned(user.hotkey, buildUpload(user, options));
  const image = (await res.json()) as UploadedImage;
  expect(res.status, JSON.stringify(image)).toBe(202);
  if (options.built !== false) await markImage(image.image_id, "built");
  return image;
}

export const CHUTE_CODE = 'from chutes.chute import Chute\n\nchute = Chute(username="x", name="y", image="z")\n';

/** A cord as the CLI serialises it (every key, nulls included). */
export function cliCord(fn: string, extra: Record<string, unknown> = {}) {
  return {
    method: "POST",
    path: `/${fn}`,
    public_api_path: null,
    public_api_method: "POST",
    stream: false,
    function: fn,
    input_schema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
    output_schema: {},
    output_content_type: "application/json",
    minimal_input_schema: {},
    passthrough: false,
    ...extra,
  };
}

/** The body `chutes deploy` sends, in its key order. */
export function deployBody(image: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: uniqueName("chute").replaceAll("_", "-"),
    tagline: "a chute",
    readme: "# readme",
    logo_id: null,
    image,
    public: false,
    standard_template: null,
    node_selector: { gpu_count: 1, min_vram_gb_per_gpu: 24, include: null, exclude: null },
    filename: "my_chute.py",
    ref_str: "my_chute:chute",
    code: CHUTE_CODE,
    cords: [cliCord("echo", { public_api_path: "/echo" }), cliCord("stream", { stream: true })],
    ...overrides,
  };
}

/** `POST /chutes/` with a compact JSON body (orjson's layout). */
export function deployRequest(body: Record<string, unknown>): SignedRequest {
  return { method: "POST", path: "/chutes/", body: JSON.stringify(body) };
}

export async function deploy(user: TestUser, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const res = await sendSigned(user.hotkey, deployRequest(body));
  const chute = (await res.json()) as Record<string, unknown>;
  expect(res.status, JSON.stringify(chute)).toBe(200);
  return chute;
}
