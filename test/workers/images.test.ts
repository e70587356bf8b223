/**
 * `/images`: the CLI's build upload (multipart, signed over the whole body), list, get and
 * delete, against the real Worker, Postgres, Redis, R2 and miner hub.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/client.ts";
import { images } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import { apiHost } from "../../src/hosts/api.ts";
import { uuid5 } from "../../src/lib/ids.ts";
import { imageObjectKeys } from "../../src/services/images.ts";
import {
  registerMiner,
  registerUser,
  type SignedRequest,
  sendSigned,
  signedRequest,
  type TestUser,
} from "./accounts.ts";
import {
  buildUpload,
  builtImage,
  deploy,
  deployBody,
  imageName,
  markImage,
  PICKLE_B64,
  uploadLogo,
  ZIP,
} from "./catalogue.ts";
import { expectError } from "./helpers.ts";
import { connectMiner, isEvent } from "./miners.ts";
import { runCommonRouteTests } from "./route-security.ts";

const config = configFor(env);
const handle = openDatabase(config);
const db = handle.db;
afterAll(() => handle.close());

const IMAGE_KEYS = [
  "build_completed_at",
  "build_started_at",
  "created_at",
  "image_id",
  "logo",
  "logo_id",
  "name",
  "public",
  "readme",
  "status",
  "tag",
  "user",
];

const get = (user: TestUser, ref: string) =>
  sendSigned(user.hotkey, { method: "GET", path: `/images/${ref}`, purpose: "images" });
const list = (user: TestUser, query = "") =>
  sendSigned(user.hotkey, { method: "GET", path: `/images/${query}`, purpose: "images" });
const remove = (user: TestUser, ref: string) =>
  sendSigned(user.hotkey, { method: "DELETE", path: `/images/${ref}`, purpose: "images" });
const imageRow = async (imageId: string) => (await db.select().from(images).where(eq(images.imageId, imageId)))[0];

/** Through the API host with some variables overridden (limits, the deposit gate). */
async function withConfig(user: TestUser, request: SignedRequest, overrides: Record<string, string>) {
  const ctx = createExecutionContext();
  const res = await apiHost.fetch(await signedRequest(user.hotkey, request), { ...env, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

describe("POST /images/ (chutes build)", () => {
  it("stores the CLI's upload and answers 202 with the image, pending build, under the SDK's id", async () => {
    const user = await registerUser();
    const miner = await connectMiner(await registerMiner());
    const name = imageName();
    const res = await sendSigned(user.hotkey, buildUpload(user, { name, tag: "1.0.2" }));
    expect(res.status).toBe(202);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(IMAGE_KEYS);
    const imageId = await uuid5(`${user.username}/${name}:1.0.2`);
    expect(body).toMatchObject({
      image_id: imageId,
      name,
      tag: "1.0.2",
      public: false,
      status: "pending build",
      readme: "# an image",
      build_started_at: null,
      logo_id: null,
      logo: null,
      user: { username: user.username, user_id: user.userId, created_at: expect.any(String) },
    });

    const keys = imageObjectKeys(user.userId, imageId);
    const context = await config.BUCKET.get(keys.context);
    expect(new Uint8Array((await context?.arrayBuffer()) ?? new ArrayBuffer(0))).toEqual(ZIP);
    const dockerfile = await (await config.BUCKET.get(keys.dockerfile))?.text();
    expect(dockerfile).toContain("RUN pip install numpy");
    expect(dockerfile?.trimEnd().endsWith(`RUN pip install --upgrade chutes==${config.CHUTES_VERSION}`)).toBe(true);
    const pickle = await (await config.BUCKET.get(keys.pickle))?.arrayBuffer();
    expect(new Uint8Array(pickle ?? new ArrayBuffer(0))).toEqual(
      Uint8Array.from(atob(PICKLE_B64), (c) => c.charCodeAt(0)),
    );
    expect(await imageRow(imageId)).toMatchObject({ status: "pending", chutesVersion: config.CHUTES_VERSION });

    expect(await miner.frames.until(isEvent("image_created", { image_id: imageId }))).toMatchObject({
      data: { image_id: imageId, name, tag: "1.0.2", username: user.username, status: "pending build" },
    });
    miner.ws.close(1000);
  });

  it("answers --wait with no builder online: a log line saying so and the DONE the CLI stops at", async () => {
    const user = await registerUser();
    const res = await sendSigned(user.hotkey, buildUpload(user, { wait: true }));
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const lines = (await res.text()).split("\n").filter(Boolean);
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0]?.replace(/^data: /, "") ?? "")).toMatchObject({
      log_type: "stdout",
      log: expect.stringContaining("no image builder is online"),
    });
    expect(lines[1]).toBe("DONE");
  });

  it("refuses a second upload of the same name and tag (409), changing nothing", async () => {
    const user = await registerUser();
    const name = imageName();
    await builtImage(user, { name });
    const again = await sendSigned(user.hotkey, buildUpload(user, { name, dockerfile: "FROM scratch\n" }));
    const body = await expectError(again, 409, "conflict");
    expect(body.detail).toBe(`Image with name=${name} and tag=0.1 already exists`);
    const imageId = await uuid5(`${user.username}/${name}:0.1`);
    expect((await imageRow(imageId))?.status).toBe("built");
    const dockerfile = await (await config.BUCKET.get(imageObjectKeys(user.userId, imageId).dockerfile))?.text();
    expect(dockerfile).toContain("numpy");
  });

  it("refuses bad input with 4xx JSON and stores nothing", async () => {
    const user = await registerUser();
    const other = await registerUser();
    const name = imageName();
    const stored = async () => {
      const imageId = await uuid5(`${user.username}/${name}:0.1`);
      const objects = await config.BUCKET.list({ prefix: `forge/${user.userId}/${imageId}` });
      return { row: await imageRow(imageId), objects: objects.objects.length };
    };
    const cases: [SignedRequest, number, string][] = [
      [buildUpload(user, { name, username: other.username }), 403, "forbidden"],
      [buildUpload(user, { name: "Upper-Case" }), 422, "validation_failed"],
      [buildUpload(user, { name: "a" }), 422, "validation_failed"],
      [buildUpload(user, { name: "has/slash" }), 422, "validation_failed"],
      [buildUpload(user, { name, tag: "x" }), 422, "validation_failed"],
      [buildUpload(user, { name, extra: { public: "maybe" } }), 422, "validation_failed"],
      [buildUpload(user, { name, extra: { image: "not base64!" } }), 422, "validation_failed"],
      [buildUpload(user, { name, extra: { readme: "r".repeat(16_385) } }), 422, "validation_failed"],
      [buildUpload(user, { name, context: new TextEncoder().encode("not a zip") }), 400, "bad_request"],
      [buildUpload(user, { name, logoId: crypto.randomUUID() }), 400, "bad_request"],
      [{ method: "POST", path: "/images/", body: JSON.stringify({ name }) }, 415, "unsupported_media_type"],
    ];
    for (const [request, status, code] of cases) {
      const res = await sendSigned(user.hotkey, request);
      await expectError(res, status, code);
    }
    const foreignLogo = await uploadLogo(other);
    await expectError(
      await sendSigned(user.hotkey, buildUpload(user, { name, logoId: foreignLogo.logo_id })),
      400,
      "bad_request",
    );
    expect(await stored()).toEqual({ row: undefined, objects: 0 });
  });

  it("refuses a context over IMAGE_CONTEXT_MAX_BYTES (413) and non-developers when a deposit is required", async () => {
    const user = await registerUser();
    const big = buildUpload(user, { context: new Uint8Array(70 * 1024).fill(0x50) });
    await expectError(
      await withConfig(user, big, { IMAGE_CONTEXT_MAX_BYTES: String(64 * 1024) }),
      413,
      "payload_too_large",
    );
    const gated = await withConfig(user, buildUpload(user), { DEVELOPER_DEPOSIT_USD: "250" });
    await expectError(gated, 401, "developer_deposit_required");
  });

  it("attaches one of the caller's logos", async () => {
    const user = await registerUser();
    const logo = await uploadLogo(user);
    const image = await builtImage(user, { logoId: logo.logo_id });
    const res = await get(user, image.image_id);
    expect(await res.json()).toMatchObject({ logo_id: logo.logo_id, logo: logo.path });
  });
});

describe("GET /images/", () => {
  it("lists the caller's images newest first, paginated, with public ones on request", async () => {
    const [user, other] = await Promise.all([registerUser(), registerUser()]);
    const mine = [
      await builtImage(user, { name: imageName() }),
      await builtImage(user, { name: imageName(), tag: "2.0" }),
    ];
    const theirsPublic = await builtImage(other, { public: true });
    const theirsPrivate = await builtImage(other);

    const res = await list(user, "?limit=1&page=0");
    const page = (await res.json()) as { total: number; page: number; limit: number; items: Record<string, unknown>[] };
    expect(page).toMatchObject({ total: 2, page: 0, limit: 1 });
    expect(page.items.map((item) => item.image_id)).toEqual([mine[1]?.image_id]);
    // What the CLI's table shows: strings (or null) in every cell.
    for (const cell of ["image_id", "name", "tag", "status", "created_at"])
      expect(typeof page.items[0]?.[cell]).toBe("string");
    expect(page.items[0]?.status).toBe("built and pushed");

    const withPublic = (await (await list(user, "?include_public=True&limit=100")).json()) as {
      items: { image_id: string }[];
    };
    const ids = withPublic.items.map((item) => item.image_id);
    expect(ids).toContain(theirsPublic.image_id);
    expect(ids).not.toContain(theirsPrivate.image_id);

    const byName = (await (await list(user, `?name=${mine[0]?.name}`)).json()) as { total: number };
    expect(byName.total).toBe(1);
    const byTag = (await (await list(user, "?tag=2.")).json()) as { total: number };
    expect(byTag.total).toBe(1);
    await expectError(await list(user, "?limit=1000"), 422, "validation_failed");
  });
});

describe("GET /images/{id or [user/]name:tag}", () => {
  it("finds the caller's images and public ones by id, name:tag and user/name:tag; others' private ones are 404", async () => {
    const [user, other] = await Promise.all([registerUser(), registerUser()]);
    const image = await builtImage(user, { name: imageName() });
    for (const ref of [image.image_id, `${image.name}:0.1`, `${user.username}/${image.name}:0.1`]) {
      const res = await get(user, ref);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ image_id: image.image_id, status: "built and pushed" });
    }
    await expectError(await get(other, image.image_id), 404, "not_found");
    await expectError(await get(other, `${user.username}/${image.name}:0.1`), 404, "not_found");
    await expectError(await get(user, "no-such:thing"), 404, "not_found");
    const shown = await builtImage(user, { public: true });
    expect((await get(other, `${user.username}/${shown.name}:0.1`)).status).toBe(200);
  });

  it("reports build states as upstream's strings", async () => {
    const user = await registerUser();
    const image = await builtImage(user, { built: false });
    expect(await (await get(user, image.image_id)).json()).toMatchObject({ status: "pending build" });
    await markImage(image.image_id, "building");
    expect(await (await get(user, image.image_id)).json()).toMatchObject({ status: "building" });
    await markImage(image.image_id, "error", "trivy found CRITICAL issues");
    expect(await (await get(user, image.image_id)).json()).toMatchObject({
      status: "error: trivy found CRITICAL issues",
    });
  });
});

describe("DELETE /images/{ref}", () => {
  it("deletes the owner's image and its build inputs, refusing while a chute uses it", async () => {
    const [user, other] = await Promise.all([registerUser(), registerUser()]);
    const miner = await connectMiner(await registerMiner());
    const image = await builtImage(user, { public: true });
    const chute = await deploy(user, deployBody(image.image_id));

    await expectError(await remove(other, image.image_id), 404, "not_found");
    const inUse = await expectError(await remove(user, image.image_id), 409, "conflict");
    expect(inUse.detail).toContain(String(chute.name));

    const gone = await sendSigned(user.hotkey, {
      method: "DELETE",
      path: `/chutes/${chute.chute_id}`,
      purpose: "chutes",
    });
    expect(gone.status).toBe(200);
    const res = await remove(user, `${image.name}:0.1`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ image_id: image.image_id, deleted: true });
    expect(await imageRow(image.image_id)).toBeUndefined();
    const objects = await config.BUCKET.list({ prefix: `forge/${user.userId}/${image.image_id}` });
    expect(objects.objects).toHaveLength(0);
    expect(await miner.frames.until(isEvent("image_deleted", { image_id: image.image_id }))).toMatchObject({
      data: { image_id: image.image_id },
    });
    await expectError(await get(user, image.image_id), 404, "not_found");
    miner.ws.close(1000);
  });
});

const IMAGE_SCOPE_ELSEWHERE = { object_type: "chutes", action: "read" };

runCommonRouteTests({
  name: "POST /images/",
  okStatus: 202,
  request: (user) => buildUpload(user),
  wrongScope: { object_type: "images", action: "read" },
});
runCommonRouteTests({
  name: "GET /images/",
  request: () => ({ method: "GET", path: "/images/", purpose: "images" }),
  wrongScope: IMAGE_SCOPE_ELSEWHERE,
});
runCommonRouteTests({
  name: "GET /images/{id}",
  request: async (user) => ({ method: "GET", path: `/images/${(await builtImage(user)).image_id}`, purpose: "images" }),
  foreignRequest: async (_user, owner) => ({
    method: "GET",
    path: `/images/${(await builtImage(owner)).image_id}`,
    purpose: "images",
  }),
  wrongScope: IMAGE_SCOPE_ELSEWHERE,
});
runCommonRouteTests({
  name: "DELETE /images/{id}",
  request: async (user) => ({
    method: "DELETE",
    path: `/images/${(await builtImage(user)).image_id}`,
    purpose: "images",
  }),
  foreignRequest: async (_user, owner) => ({
    method: "DELETE",
    path: `/images/${(await builtImage(owner, { public: true })).image_id}`,
    purpose: "images",
  }),
});
