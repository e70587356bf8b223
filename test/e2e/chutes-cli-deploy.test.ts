/**
 * A scripted chutes CLI 0.2.x against a real `npm start`, from build to delete: the
 * requests `chutes build --logo --public`, `chutes deploy --logo --public`, `chutes
 * list|get|delete` and `chutes images get|delete` send (multipart uploads signed over the
 * whole body, compact JSON for deploy, purpose-signed GETs and DELETEs), and the statuses
 * and fields the CLI reads back (upstream-sdk.md §2–3). The image's build is recorded the
 * way a successful builder's result is, by writing the rows (its base image cannot be
 * pulled offline; test/e2e/builds.test.ts runs real builds). A miner on the socket host
 * watches the deploy and the delete arrive as events.
 */
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import WebSocket from "ws";
import { withDatabase } from "../../infra/dev/database.ts";
import { imageBuilds, images, metagraphNodes } from "../../src/db/schema.ts";
import { cliHeaders, multipartBody, randomHotkey, sdkUuid5 } from "../support/chutes-cli.ts";
import { type HostResponse, hostRequest, registerOverApi } from "../support/http.ts";

const base = inject("platformUrl");
const databaseUrl = inject("platformDatabaseUrl");
const API = "api.localhost";
const HOTKEY = randomHotkey();
const USERNAME = `dep_${Date.now().toString(36).slice(-8)}`;
const IMAGE = { name: "echo-image", tag: "0.1.0" };
const CHUTE_NAME = "echo";
/** A PNG's first bytes (the API types logos by their magic bytes). */
const LOGO = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
const MODULE =
  'from chutes.chute import Chute, NodeSelector\n\nchute = Chute(username="me", name="echo", image=image)\n';

let userId = "";

function json<T = Record<string, unknown>>(res: HostResponse): T {
  expect(res.headers["content-type"]).toMatch(/^application\/json/);
  return res.json<T>();
}

const signedGet = async (method: "GET" | "DELETE", path: string, purpose: string) =>
  hostRequest(base, API, path, { method, headers: await cliHeaders(HOTKEY, { purpose, userId }) });

/** A multipart POST as aiohttp sends it: explicit boundary Content-Type, signed over every byte. */
async function multipartPost(path: string, fields: Parameters<typeof multipartBody>[0]) {
  const { body, contentType } = multipartBody(fields);
  const headers = await cliHeaders(HOTKEY, { body, contentType, userId });
  return hostRequest(base, API, path, { method: "POST", headers, body });
}

async function jsonPost(path: string, value: unknown) {
  const body = JSON.stringify(value);
  return hostRequest(base, API, path, { method: "POST", headers: await cliHeaders(HOTKEY, { body, userId }), body });
}

/** A miner's socket: signed upgrade to socket.{domain}, frames collected as they come. */
class Miner {
  readonly frames: Record<string, unknown>[] = [];
  readonly ws: WebSocket;
  constructor(headers: Record<string, string>) {
    const url = new URL(base);
    this.ws = new WebSocket(`ws://${url.host}/`, { headers: { ...headers, host: `socket.localhost:${url.port}` } });
    this.ws.on("message", (data) => this.frames.push(JSON.parse(String(data)) as Record<string, unknown>));
  }
  async event(reason: string): Promise<Record<string, unknown>> {
    for (let waited = 0; waited < 10_000; waited += 50) {
      const frame = this.frames.find((f) => f.type === "event" && f.reason === reason);
      if (frame) return frame;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`no ${reason} event; frames: ${JSON.stringify(this.frames)}`);
  }
}

let miner: Miner;

beforeAll(async () => {
  const res = await registerOverApi(base, HOTKEY, USERNAME);
  expect(res.status, res.text).toBe(200);
  userId = String(json(res).user_id);

  const minerKey = randomHotkey();
  await withDatabase(databaseUrl, (db) =>
    db
      .insert(metagraphNodes)
      .values({ hotkey: minerKey.ss58, netuid: 64, nodeId: 7, coldkey: minerKey.ss58, checksum: "e2e" }),
  );
  miner = new Miner(await cliHeaders(minerKey, { purpose: "sockets" }));
  await new Promise((resolve, reject) => {
    miner.ws.once("open", resolve);
    miner.ws.once("unexpected-response", (_req, response) =>
      reject(new Error(`upgrade refused: ${response.statusCode}`)),
    );
  });
});
afterAll(() => miner?.ws.close(1000));

describe("the chutes CLI from build to delete, scripted", () => {
  let imageId = "";
  let chuteId = "";
  let logoPath = "";

  it("chutes build --logo --public: image check (404), logo upload, multipart build upload (202)", async () => {
    imageId = await sdkUuid5(`${USERNAME}/${IMAGE.name}:${IMAGE.tag}`);
    const missing = await signedGet("GET", `/images/${imageId}`, "images");
    expect(missing.status).toBe(404);
    json(missing);

    const logo = await multipartPost("/logos/", [
      { name: "logo", value: LOGO, filename: "logo.png", contentType: "image/png" },
    ]);
    expect(logo.status, logo.text).toBe(200);
    const logoId = String(json(logo).logo_id);

    const res = await multipartPost("/images/", [
      { name: "username", value: USERNAME },
      { name: "name", value: IMAGE.name },
      { name: "tag", value: IMAGE.tag },
      { name: "readme", value: "" },
      { name: "dockerfile", value: "FROM parachutes/base-python:3.12.7\nADD echo.py /app/echo.py\n" },
      { name: "public", value: "True" },
      { name: "wait", value: "False" },
      { name: "logo_id", value: logoId },
      { name: "image", value: btoa("pickled Image") },
      {
        name: "build_context",
        value: new Uint8Array([0x50, 0x4b, 5, 6, ...new Uint8Array(18)]),
        filename: "chute.zip",
        contentType: "application/zip",
      },
    ]);
    expect(res.status, res.text).toBe(202);
    expect(json(res)).toMatchObject({ image_id: imageId, status: "pending build", public: true });
    expect((await miner.event("image_created")).data).toMatchObject({ image_id: imageId });

    const again = await multipartPost("/images/", [
      { name: "username", value: USERNAME },
      { name: "name", value: IMAGE.name },
      { name: "tag", value: IMAGE.tag },
      { name: "dockerfile", value: "FROM scratch\n" },
      {
        name: "build_context",
        value: new Uint8Array([0x50, 0x4b, 5, 6]),
        filename: "chute.zip",
        contentType: "application/zip",
      },
    ]);
    expect(again.status).toBe(409);
    expect(json(again)).toMatchObject({ code: "conflict" });
  });

  it("chutes deploy refuses to continue while the image is not built", async () => {
    const res = await signedGet("GET", `/images/${USERNAME}/${IMAGE.name}:${IMAGE.tag}`, "images");
    expect(res.status).toBe(200);
    // npm start's builder (when buildah is installed) may have claimed it already; its base
    // image cannot be pulled offline, so that build can only fail.
    expect(String(json(res).status)).toMatch(/^(pending build|building|error: )/);
    // The server refuses too, should a client deploy anyway.
    const deploy = await jsonPost("/chutes/", deployBody(null));
    expect(deploy.status).toBe(409);
    expect(String(json(deploy).detail)).toMatch(/not built/);
  });

  it("(the builder builds the image)", async () => {
    // Recorded as a successful builder's result would be, the job included, so a late
    // result of the real builder's attempt changes nothing.
    await withDatabase(databaseUrl, async (db) => {
      await db
        .update(imageBuilds)
        .set({ status: "succeeded", leaseExpiresAt: null, pushTokenHash: null, completedAt: new Date() })
        .where(eq(imageBuilds.imageId, imageId));
      await db
        .update(images)
        .set({ status: "built", buildError: null, buildCompletedAt: new Date() })
        .where(eq(images.imageId, imageId));
    });
  });

  it("chutes deploy --logo --public: image check, logo upload, compact-JSON deploy (200 with version)", async () => {
    const image = await signedGet("GET", `/images/${imageId}`, "images");
    expect(image.status).toBe(200);
    expect(json(image)).toMatchObject({ status: "built and pushed", public: true });

    const logo = await multipartPost("/logos/", [
      { name: "logo", value: LOGO, filename: "logo.png", contentType: "image/png" },
    ]);
    const { logo_id: logoId, path } = json<{ logo_id: string; path: string }>(logo);
    logoPath = path;

    const res = await jsonPost("/chutes/", deployBody(logoId));
    expect(res.status, res.text).toBe(200);
    const chute = json(res);
    chuteId = await sdkUuid5(`${USERNAME}::chute::${CHUTE_NAME}`);
    expect(chute).toMatchObject({
      chute_id: chuteId,
      version: await sdkUuid5(`${imageId}:${MODULE}`),
      slug: `${USERNAME.replace("_", "-")}-${CHUTE_NAME}`,
      public: true,
      logo_id: logoId,
      image: { image_id: imageId },
    });
    expect((await miner.event("chute_created")).data).toEqual({ chute_id: chuteId, version: chute.version });

    const served = await hostRequest(base, API, logoPath);
    expect(served.status).toBe(200);
    expect(served.headers["cache-control"]).toContain("immutable");
  });

  it("chutes list, get (by name), images list", async () => {
    const list = await signedGet("GET", "/chutes/?include_public=False&limit=25&page=0", "chutes");
    expect(list.status).toBe(200);
    const page = json<{ total: number; items: Record<string, unknown>[]; cord_refs: Record<string, unknown[]> }>(list);
    expect(page.total).toBe(1);
    const [item] = page.items;
    for (const cell of ["chute_id", "name", "slug", "created_at", "cord_ref_id"])
      expect(typeof item?.[cell]).toBe("string");
    expect(typeof item?.hot).toBe("boolean");
    expect(page.cord_refs[String(item?.cord_ref_id)]).toEqual([
      expect.objectContaining({ function: "echo", stream: false, public_api_method: "POST", public_api_path: "/echo" }),
    ]);

    const get = await signedGet("GET", `/chutes/${CHUTE_NAME}`, "chutes");
    expect(get.status).toBe(200);
    expect(json(get)).toMatchObject({ chute_id: chuteId, cords: [expect.objectContaining({ function: "echo" })] });

    const imagesList = await signedGet("GET", "/images/?limit=25&page=0", "images");
    const images = json<{ items: Record<string, unknown>[] }>(imagesList).items;
    expect(images.map((i) => [i.image_id, i.name, i.tag, i.status])).toEqual([
      [imageId, IMAGE.name, IMAGE.tag, "built and pushed"],
    ]);
  });

  it("chutes delete, then chutes images delete", async () => {
    const busy = await signedGet("DELETE", `/images/${imageId}`, "images");
    expect(busy.status).toBe(409);
    json(busy);
    const res = await signedGet("DELETE", `/chutes/${CHUTE_NAME}`, "chutes");
    expect(res.status).toBe(200);
    expect(json(res)).toEqual({ chute_id: chuteId, deleted: true });
    expect((await miner.event("chute_deleted")).data).toMatchObject({ chute_id: chuteId });
    const image = await signedGet("DELETE", `/images/${IMAGE.name}:${IMAGE.tag}`, "images");
    expect(image.status).toBe(200);
    expect(json(image)).toEqual({ image_id: imageId, deleted: true });
    const gone = await signedGet("GET", `/chutes/${chuteId}`, "chutes");
    expect(gone.status).toBe(404);
  });
});

/** What `chutes deploy` sends for the module above (its cords and node selector, nulls included). */
function deployBody(logoId: string | null) {
  return {
    name: CHUTE_NAME,
    tagline: "",
    readme: "",
    logo_id: logoId,
    image: `${USERNAME}/${IMAGE.name}:${IMAGE.tag}`,
    public: true,
    standard_template: null,
    node_selector: { gpu_count: 1, min_vram_gb_per_gpu: 16, include: null, exclude: null },
    filename: "echo.py",
    ref_str: "echo:chute",
    code: MODULE,
    cords: [
      {
        method: "POST",
        path: "/echo",
        public_api_path: "/echo",
        public_api_method: "POST",
        stream: false,
        function: "echo",
        input_schema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
        output_schema: { type: "object" },
        output_content_type: "application/json",
        minimal_input_schema: {},
        passthrough: false,
      },
    ],
  };
}
