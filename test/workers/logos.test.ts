/**
 * `/logos`: uploads as the CLI sends them (multipart field `logo`, signed over the whole
 * body), typed by their bytes, and public immutable downloads with ETag revalidation.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/client.ts";
import { logos } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import { LOGO_MAX_BYTES } from "../../src/services/logos.ts";
import { multipartBody } from "../support/chutes-cli.ts";
import { registerUser, sendSigned } from "./accounts.ts";
import { JPEG, logoUpload, PNG, uploadLogo, WEBP } from "./catalogue.ts";
import { callHost, expectError } from "./helpers.ts";
import { runCommonRouteTests } from "./route-security.ts";

const config = configFor(env);
const handle = openDatabase(config);
afterAll(() => handle.close());

const download = (path: string, headers: Record<string, string> = {}) =>
  callHost("api.localhost", path, { headers, redirect: "manual" });

describe("POST /logos/", () => {
  it("stores PNG, JPEG and WebP by what the bytes are, whatever the client declared", async () => {
    const user = await registerUser();
    for (const [bytes, ext, type] of [
      [PNG, "png", "image/png"],
      [JPEG, "jpg", "image/jpeg"],
      [WEBP, "webp", "image/webp"],
    ] as const) {
      const res = await sendSigned(user.hotkey, logoUpload(bytes, "application/octet-stream"));
      expect(res.status).toBe(200);
      const body = (await res.json()) as { logo_id: string; path: string };
      expect(body.path).toBe(`/logos/${body.logo_id}.${ext}`);
      const [row] = await handle.db.select().from(logos).where(eq(logos.logoId, body.logo_id));
      expect(row).toMatchObject({ userId: user.userId, objectKey: `logos/${user.userId}/${body.logo_id}.${ext}` });
      const object = await config.BUCKET.get(`logos/${user.userId}/${body.logo_id}.${ext}`);
      expect(object?.httpMetadata?.contentType).toBe(type);
    }
  });

  it("refuses what is not an image, too large, or missing (4xx), storing nothing", async () => {
    const user = await registerUser();
    const before = (await config.BUCKET.list({ prefix: `logos/${user.userId}/` })).objects.length;
    const gif = new TextEncoder().encode("GIF89a....");
    await expectError(await sendSigned(user.hotkey, logoUpload(gif, "image/png")), 415, "unsupported_media_type");
    const huge = new Uint8Array(LOGO_MAX_BYTES + 1);
    huge.set(PNG);
    await expectError(await sendSigned(user.hotkey, logoUpload(huge)), 413, "payload_too_large");
    const { body, contentType } = multipartBody([{ name: "image", value: PNG, filename: "x.png" }]);
    await expectError(
      await sendSigned(user.hotkey, { method: "POST", path: "/logos/", body, contentType }),
      422,
      "validation_failed",
    );
    expect((await config.BUCKET.list({ prefix: `logos/${user.userId}/` })).objects.length).toBe(before);
  });
});

describe("GET /logos/{id}.{ext}", () => {
  it("serves the logo publicly, immutable, and answers a matching If-None-Match with 304", async () => {
    const user = await registerUser();
    const logo = await uploadLogo(user, WEBP);
    const res = await download(logo.path);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/webp");
    expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(WEBP);
    const etag = res.headers.get("etag") ?? "";
    expect(etag).toMatch(/^"[0-9a-f]+"$/);
    const again = await download(logo.path, { "if-none-match": etag });
    expect(again.status).toBe(304);
    expect(again.headers.get("etag")).toBe(etag);
    expect(await again.text()).toBe("");
    expect((await download(logo.path, { "if-none-match": '"stale"' })).status).toBe(200);
  });

  it("redirects another extension of a logo to the stored one, and 404s unknown logos", async () => {
    const user = await registerUser();
    const logo = await uploadLogo(user, JPEG);
    const moved = await download(logo.path.replace(".jpg", ".webp"));
    expect(moved.status).toBe(301);
    expect(moved.headers.get("location")).toBe(logo.path);
    expect((await download(logo.path.replace(".jpg", ".jpeg"))).status).toBe(200);
    await expectError(await download(`/logos/${crypto.randomUUID()}.png`), 404, "not_found");
    await expectError(await download("/logos/not-a-logo.png"), 404, "not_found");
    await expectError(await download(`/logos/${crypto.randomUUID()}.gif`), 404, "not_found");
  });
});

runCommonRouteTests({ name: "POST /logos/", request: () => logoUpload(PNG) });
