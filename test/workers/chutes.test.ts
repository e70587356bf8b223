/**
 * `/chutes`: the CLI's deploy body, redeploys, refusals, lookups by id/name/slug,
 * visibility, lists with cord references, edits, sharing, deletion and the miner events
 * each change publishes, against the real Worker, Postgres, Redis and miner hub.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/client.ts";
import { bounties, chutes, instanceAudit, instances } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import { uuid5 } from "../../src/lib/ids.ts";
import { CHUTE_CODE_MAX_BYTES } from "../../src/schemas/chutes.ts";
import { findChuteBySlug, findTemplateChute } from "../../src/services/chutes.ts";
import { findPublicCord } from "../../src/services/cords.ts";
import { randomHotkey } from "../support/chutes-cli.ts";
import {
  createKey,
  registerMiner,
  registerUser,
  type SignedRequest,
  sendSigned,
  sendWithKey,
  type TestUser,
  uniqueName,
} from "./accounts.ts";
import {
  builtImage,
  CHUTE_CODE,
  cliCord,
  deploy,
  deployBody,
  deployRequest,
  type UploadedImage,
  uploadLogo,
} from "./catalogue.ts";
import { callHost, expectError } from "./helpers.ts";
import { connectMiner, isEvent, type MinerSocket } from "./miners.ts";
import { runCommonRouteTests } from "./route-security.ts";

const config = configFor(env);
const handle = openDatabase(config);
const db = handle.db;
afterAll(() => handle.close());

type Json = Record<string, unknown>;

const CHUTE_KEYS = [
  "chute_id",
  "chutes_version",
  "cord_ref_id",
  "cords",
  "created_at",
  "current_estimated_price",
  "hot",
  "image",
  "instances",
  "logo",
  "logo_id",
  "name",
  "node_selector",
  "public",
  "readme",
  "slug",
  "standard_template",
  "supported_gpus",
  "tagline",
  "tool_description",
  "updated_at",
  "user",
  "version",
];

const get = (user: TestUser, ref: string) =>
  sendSigned(user.hotkey, { method: "GET", path: `/chutes/${ref}`, purpose: "chutes" });
const list = (user: TestUser | null, query = "") =>
  user
    ? sendSigned(user.hotkey, { method: "GET", path: `/chutes/${query}`, purpose: "chutes" })
    : callHost("api.localhost", `/chutes/${query}`);
const remove = (user: TestUser, ref: string) =>
  sendSigned(user.hotkey, { method: "DELETE", path: `/chutes/${ref}`, purpose: "chutes" });
const post = (user: TestUser, path: string, body: Json) =>
  sendSigned(user.hotkey, { method: "POST", path, body: JSON.stringify(body) });
const chuteRow = async (chuteId: string) => (await db.select().from(chutes).where(eq(chutes.chuteId, chuteId)))[0];

let miner: MinerSocket;
beforeAll(async () => {
  miner = await connectMiner(await registerMiner());
});
afterAll(() => miner.ws.close(1000));

describe("POST /chutes/ (chutes deploy)", () => {
  it("deploys the CLI's body and answers what the CLI reads: ids as the SDK derives them, slug, price, cords", async () => {
    const user = await registerUser();
    const image = await builtImage(user, { public: true });
    const logo = await uploadLogo(user);
    const body = deployBody(image.image_id, { name: "My_Chute", logo_id: logo.logo_id, public: true });
    const res = await sendSigned(user.hotkey, deployRequest(body));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const chute = (await res.json()) as Json;
    expect(Object.keys(chute).sort()).toEqual(CHUTE_KEYS);
    const chuteId = await uuid5(`${user.username}::chute::My_Chute`);
    expect(chute).toMatchObject({
      chute_id: chuteId,
      name: "My_Chute",
      version: await uuid5(`${image.image_id}:${CHUTE_CODE}`),
      slug: `${user.username.toLowerCase().replaceAll("_", "-")}-my-chute`,
      public: true,
      standard_template: null,
      cord_ref_id: null,
      logo_id: logo.logo_id,
      logo: logo.path,
      hot: false,
      instances: [],
      image: { image_id: image.image_id, status: "built and pushed" },
      user: { username: user.username, user_id: user.userId },
      chutes_version: config.CHUTES_VERSION,
    });
    // min 24 GB: a4000 (16 GB) is out, so the cheapest is the a5000 at $0.27/h.
    expect(chute.supported_gpus).toEqual(expect.arrayContaining(["a5000", "4090", "h200"]));
    expect(chute.supported_gpus).not.toContain("a4000");
    expect(chute.node_selector).toEqual({
      gpu_count: 1,
      min_vram_gb_per_gpu: 24,
      include: null,
      exclude: null,
      supported_gpus: chute.supported_gpus,
      compute_multiplier: expect.closeTo(0.27 / 2.7375, 12),
    });
    expect(chute.current_estimated_price).toEqual({ usd: { hour: 0.27, second: 0.000075 }, tao: null });
    expect(chute.cords).toEqual([
      { ...cliCord("echo", { public_api_path: "/echo" }) },
      { ...cliCord("stream", { stream: true }), public_api_method: null },
    ]);
    expect(await db.select().from(bounties).where(eq(bounties.chuteId, chuteId))).toMatchObject([{ bounty: 100 }]);
    expect(await miner.frames.until(isEvent("chute_created", { chute_id: chuteId }))).toMatchObject({
      data: { chute_id: chuteId, version: chute.version },
    });
  });

  it("redeploys new code in place: new version, instances retired, chute_updated; the same again is 409", async () => {
    const user = await registerUser();
    const image = await builtImage(user);
    const body = deployBody(image.image_id);
    const first = await deploy(user, body);
    const chuteId = String(first.chute_id);
    const hotkey = (await registerMiner()).ss58;
    const instanceId = crypto.randomUUID();
    await db.insert(instances).values({
      instanceId,
      chuteId,
      version: String(first.version),
      minerHotkey: hotkey,
      minerUid: 1,
      minerColdkey: randomHotkey().ss58,
      host: "203.0.113.7",
      port: 30000 + Math.floor(Math.random() * 2000),
      active: true,
      verified: true,
    });
    await db
      .insert(instanceAudit)
      .values({ instanceId, chuteId, version: String(first.version), minerUid: 1, minerHotkey: hotkey });
    expect(await (await get(user, chuteId)).json()).toMatchObject({
      hot: true,
      instances: [{ instance_id: instanceId }],
    });

    const second = await deploy(user, { ...body, code: `${CHUTE_CODE}# v2\n`, tagline: "v2" });
    expect(second).toMatchObject({ chute_id: chuteId, slug: first.slug, tagline: "v2", hot: false, instances: [] });
    expect(second.version).not.toBe(first.version);
    expect(await db.select().from(instances).where(eq(instances.chuteId, chuteId))).toEqual([]);
    const [audit] = await db.select().from(instanceAudit).where(eq(instanceAudit.instanceId, instanceId));
    expect(audit).toMatchObject({ deletionReason: "chute redeployed", deletedAt: expect.any(Date) });
    expect(await miner.frames.until(isEvent("chute_updated", { chute_id: chuteId }))).toMatchObject({
      data: { chute_id: chuteId, version: second.version, old_version: first.version },
    });

    const again = await sendSigned(user.hotkey, deployRequest({ ...body, code: `${CHUTE_CODE}# v2\n` }));
    expect((await expectError(again, 409, "conflict")).detail).toMatch(/already exists/);
    const caseTwin = await sendSigned(user.hotkey, deployRequest({ ...body, name: String(body.name).toUpperCase() }));
    expect((await expectError(caseTwin, 409, "conflict")).detail).toMatch(/differing only in case/);
  });

  it("refuses bad deploys with 4xx JSON and stores nothing", async () => {
    const [user, other] = await Promise.all([registerUser(), registerUser()]);
    const image = await builtImage(user);
    const unbuilt = await builtImage(user, { built: false });
    const theirs = await builtImage(other);
    const name = uniqueName("bad").replaceAll("_", "-");
    const bad = (overrides: Json) => deployRequest(deployBody(image.image_id, { name, ...overrides }));
    const cases: [SignedRequest, number, string, RegExp?][] = [
      [bad({ image: unbuilt.image_id }), 409, "conflict", /not built \(status: pending build\)/],
      [bad({ image: theirs.image_id }), 400, "bad_request", /image not found/],
      [bad({ image: "nobody/nothing:1.0" }), 400, "bad_request"],
      [bad({ public: true }), 409, "conflict", /cannot be public when image is not public/],
      [bad({ logo_id: crypto.randomUUID() }), 400, "bad_request", /Logo/],
      [bad({ name: "x" }), 422, "validation_failed"],
      [bad({ name: "bad name!" }), 422, "validation_failed"],
      [bad({ code: "#".repeat(CHUTE_CODE_MAX_BYTES + 1) }), 422, "validation_failed", /body\.code/],
      [bad({ filename: "Chute.py" }), 422, "validation_failed"],
      [bad({ ref_str: "chute" }), 422, "validation_failed"],
      [bad({ standard_template: "custom" }), 422, "validation_failed"],
      [
        bad({ node_selector: { gpu_count: 1, min_vram_gb_per_gpu: 16, include: ["b300"] } }),
        422,
        "validation_failed",
        /node_selector\.include: unknown GPU/,
      ],
      [bad({ node_selector: { gpu_count: 9, min_vram_gb_per_gpu: 16 } }), 422, "validation_failed"],
      [
        bad({ node_selector: { gpu_count: 1, min_vram_gb_per_gpu: 100, include: ["4090"] } }),
        422,
        "validation_failed",
        /No GPUs match/,
      ],
      [bad({ cords: [] }), 422, "validation_failed"],
      [bad({ cords: [cliCord("echo", { path: "/../etc" })] }), 422, "validation_failed"],
      [bad({ cords: [cliCord("echo"), cliCord("echo")] }), 422, "validation_failed", /duplicate path/],
      [bad({ cords: [cliCord("echo", { method: "DELETE" })] }), 422, "validation_failed"],
      [bad({ cords: [{ path: "/x" }] }), 422, "validation_failed"],
      [{ method: "POST", path: "/chutes/", body: "{not json" }, 400, "invalid_json"],
      [{ method: "POST", path: "/chutes/", body: " ".repeat(2 * 1024 * 1024 + 1) }, 413, "payload_too_large"],
    ];
    for (const [request, status, code, detail] of cases) {
      const body = await expectError(await sendSigned(user.hotkey, request), status, code);
      if (detail) expect(body.detail).toMatch(detail);
    }
    expect(await chuteRow(await uuid5(`${user.username}::chute::${name}`))).toBeUndefined();
  });

  it("keeps slugs unique DNS labels that never take a fixed host label", async () => {
    const suffix = uniqueName("").slice(2, 8);
    const user = await registerUser(undefined, `sl_${suffix}`);
    const a = await deploy(user, deployBody((await builtImage(user)).image_id, { name: "x.y" }));
    expect(a.slug).toBe(`sl-${suffix}-x-y`);
    const b = await deploy(user, deployBody((await builtImage(user)).image_id, { name: "x_y" }));
    expect(b.slug).toMatch(new RegExp(`^sl-${suffix}-x-y-[a-z0-9]{5}$`));

    // A username of underscores leaves only the chute's name: `api`, a fixed host label.
    const underscores = await registerUser(undefined, "_".repeat(9 + (Number.parseInt(suffix, 16) % 6)));
    const api = await deploy(underscores, deployBody((await builtImage(underscores)).image_id, { name: "api" }));
    expect(api.slug).toMatch(/^api-[a-z0-9]{5}$/);
    const long = await deploy(user, deployBody((await builtImage(user)).image_id, { name: "n".repeat(120) }));
    expect(String(long.slug).length).toBeLessThanOrEqual(63);
    expect(await findChuteBySlug(db, String(long.slug), null)).toBeNull();
    expect((await findChuteBySlug(db, String(long.slug), user.userId))?.chuteId).toBe(long.chute_id);
  });
});

describe("GET /chutes/{ref}", () => {
  it("finds a chute by id, name, slug and username/name, for its owner, sharees and (when public) anyone", async () => {
    const [owner, friend, stranger] = await Promise.all([registerUser(), registerUser(), registerUser()]);
    const image = await builtImage(owner, { public: true });
    const chute = await deploy(owner, deployBody(image.image_id));
    for (const ref of [chute.chute_id, chute.name, chute.slug, `${owner.username}/${chute.name}`]) {
      const res = await get(owner, String(ref));
      expect(res.status, String(ref)).toBe(200);
      expect(await res.json()).toMatchObject({ chute_id: chute.chute_id, cords: chute.cords });
    }
    await expectError(await get(stranger, String(chute.chute_id)), 404, "not_found");
    await expectError(await get(stranger, `${owner.username}/${chute.name}`), 404, "not_found");

    const share = await post(owner, "/chutes/share", {
      chute_id_or_name: chute.name,
      user_id_or_name: friend.username,
    });
    expect(await share.json()).toEqual({ chute_id: chute.chute_id, user_id: friend.userId, shared: true });
    expect((await get(friend, String(chute.slug))).status).toBe(200);
    await post(owner, "/chutes/unshare", { chute_id_or_name: chute.chute_id, user_id_or_name: friend.userId });
    await expectError(await get(friend, String(chute.slug)), 404, "not_found");

    const shown = await deploy(owner, deployBody(image.image_id, { public: true }));
    expect((await get(stranger, String(shown.chute_id))).status).toBe(200);
  });
});

describe("GET /chutes/", () => {
  it("lists public chutes to anyone, own and shared ones to users, with cords once per distinct set", async () => {
    const [owner, friend] = await Promise.all([registerUser(), registerUser()]);
    const image = await builtImage(owner, { public: true });
    const tag = uniqueName("ls").replaceAll("_", "-");
    const priv = await deploy(owner, deployBody(image.image_id, { name: `${tag}-private` }));
    const pub = await deploy(owner, deployBody(image.image_id, { name: `${tag}-public`, public: true }));
    await post(owner, "/chutes/share", { chute_id_or_name: priv.chute_id, user_id_or_name: friend.username });

    type Page = { total: number; items: Json[]; cord_refs: Record<string, unknown> };
    const anonymous = (await (await list(null, `?name=${tag}`)).json()) as Page;
    expect(anonymous.items.map((item) => item.chute_id)).toEqual([pub.chute_id]);

    const own = (await (await list(owner, `?name=${tag}&limit=1`)).json()) as Page;
    expect(own).toMatchObject({ total: 2, page: 0, limit: 1 });
    const item = own.items[0] ?? {};
    expect(item.cords).toBeNull();
    expect(own.cord_refs[String(item.cord_ref_id)]).toEqual(pub.cords);
    // The CLI's table cells: strings, never numbers or booleans.
    for (const cell of ["chute_id", "name", "slug", "created_at", "cord_ref_id"])
      expect(typeof item[cell]).toBe("string");

    const shared = (await (await list(friend, `?name=${tag}`)).json()) as Page;
    expect(shared.items.map((i) => i.chute_id)).toEqual([priv.chute_id]);
    const all = (await (await list(friend, `?name=${tag}&include_public=True`)).json()) as Page;
    expect(all.total).toBe(2);
    const bySlug = (await (await list(owner, `?slug=${String(pub.slug).toUpperCase()}`)).json()) as Page;
    expect(bySlug.items.map((i) => i.chute_id)).toEqual([pub.chute_id]);
    const byImage = (await (await list(owner, `?image=${image.name}&template=other`)).json()) as Page;
    expect(byImage.total).toBe(2);
    const vllmOnly = (await (await list(owner, `?name=${tag}&template=vllm`)).json()) as Page;
    expect(vllmOnly.total).toBe(0);
    await expectError(await list(owner, "?template=other2"), 422, "validation_failed");
  });
});

describe("PUT /chutes/{ref}", () => {
  it("lets the owner edit descriptions (blank fields stay) and no one else", async () => {
    const [owner, stranger] = await Promise.all([registerUser(), registerUser()]);
    const chute = await deploy(
      owner,
      deployBody((await builtImage(owner, { public: true })).image_id, { public: true }),
    );
    const put = (user: TestUser, body: Json) =>
      sendSigned(user.hotkey, { method: "PUT", path: `/chutes/${chute.chute_id}`, body: JSON.stringify(body) });
    const res = await put(owner, { tagline: "new tagline", readme: "  ", tool_description: "tools" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ tagline: "new tagline", readme: chute.readme, tool_description: "tools" });
    await expectError(await put(stranger, { tagline: "mine now" }), 404, "not_found");
    await expectError(await put(owner, { logo_id: crypto.randomUUID() }), 400, "bad_request");
    expect((await chuteRow(String(chute.chute_id)))?.tagline).toBe("new tagline");
  });
});

describe("DELETE /chutes/{ref}", () => {
  it("deletes the owner's chute with its bounty and instances, and tells miners to stop it", async () => {
    const [owner, stranger] = await Promise.all([registerUser(), registerUser()]);
    const chute = await deploy(
      owner,
      deployBody((await builtImage(owner, { public: true })).image_id, { public: true }),
    );
    const chuteId = String(chute.chute_id);
    await expectError(await remove(stranger, chuteId), 404, "not_found");
    const res = await remove(owner, String(chute.name));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ chute_id: chuteId, deleted: true });
    expect(await chuteRow(chuteId)).toBeUndefined();
    expect(await db.select().from(bounties).where(eq(bounties.chuteId, chuteId))).toEqual([]);
    expect(await miner.frames.until(isEvent("chute_deleted", { chute_id: chuteId }))).toMatchObject({
      data: { chute_id: chuteId, version: chute.version },
    });
    await expectError(await remove(owner, chuteId), 404, "not_found");
  });
});

describe("POST /chutes/share and /chutes/unshare", () => {
  it("is the owner's alone and names real users", async () => {
    const [owner, friend, stranger] = await Promise.all([registerUser(), registerUser(), registerUser()]);
    const chute = await deploy(owner, deployBody((await builtImage(owner)).image_id));
    const share = (user: TestUser, target: string) =>
      post(user, "/chutes/share", { chute_id_or_name: String(chute.chute_id), user_id_or_name: target });
    await expectError(await share(stranger, stranger.username), 404, "not_found");
    await expectError(await share(owner, "nobody_here"), 404, "not_found");
    await expectError(await share(owner, owner.username), 400, "bad_request");
    expect((await share(owner, friend.userId)).status).toBe(200);
    expect((await share(owner, friend.username)).status).toBe(200);
    await expectError(
      await post(owner, "/chutes/share", { chute_id_or_name: String(chute.chute_id) }),
      422,
      "validation_failed",
    );
  });
});

describe("standard templates", () => {
  let chutesAccount: TestUser;
  let vllmImage: UploadedImage;
  beforeAll(async () => {
    // The platform account that publishes the template images.
    chutesAccount = await registerUser(undefined, "chutes");
    vllmImage = await builtImage(chutesAccount, { name: "vllm", tag: "0.7.2", public: true });
    await builtImage(chutesAccount, { name: "vllm", tag: "0.6.9", public: true });
    await builtImage(chutesAccount, { name: "vllm", tag: "0.8.0", public: true, built: false });
    await builtImage(chutesAccount, { name: "tei", tag: "1.6.0", public: true });
  });

  it("POST /chutes/vllm makes an OpenAI-compatible chute the llm. host finds by model name", async () => {
    const user = await registerUser();
    const res = await post(user, "/chutes/vllm", {
      model: "unsloth/Llama-3.2-1B-Instruct",
      engine_args: { max_model_len: 8192 },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const chute = (await res.json()) as Json & { cords: Parameters<typeof findPublicCord>[0] };
    expect(chute).toMatchObject({
      name: "unsloth/Llama-3.2-1B-Instruct",
      chute_id: await uuid5(`${user.username}::chute::unsloth/Llama-3.2-1B-Instruct`),
      standard_template: "vllm",
      public: true,
      image: { image_id: vllmImage.image_id },
      node_selector: { gpu_count: 1, min_vram_gb_per_gpu: 80 },
    });
    expect(chute.cords.map((cord) => cord.function)).toEqual([
      "chat_stream",
      "completion_stream",
      "chat",
      "completion",
      "get_models",
    ]);
    expect(findPublicCord(chute.cords, "POST", "/v1/chat/completions", true)?.function).toBe("chat_stream");
    expect(findPublicCord(chute.cords, "POST", "/v1/chat/completions")?.function).toBe("chat");
    expect(findPublicCord(chute.cords, "GET", "/v1/models")?.function).toBe("get_models");
    const [row] = await db
      .select()
      .from(chutes)
      .where(eq(chutes.chuteId, String(chute.chute_id)));
    expect(row?.code).toContain("build_vllm_chute(");
    expect(row?.code).toContain('model_name="unsloth/Llama-3.2-1B-Instruct"');
    expect(row?.code).toContain(`image="chutes/vllm:0.7.2"`);
    expect(row?.code).toContain('\\"max_model_len\\":8192');
    expect(row).toMatchObject({ filename: "chute.py", refStr: "chute:chute" });

    const found = await findTemplateChute(db, "vllm", "unsloth/Llama-3.2-1B-Instruct", user.userId);
    expect(found?.chuteId).toBe(chute.chute_id);
    expect(await findTemplateChute(db, "tei", "unsloth/Llama-3.2-1B-Instruct", user.userId)).toBeNull();
  });

  it("POST /chutes/tei and /chutes/diffusion make their templates' cords", async () => {
    const user = await registerUser();
    const tei = await post(user, "/chutes/tei", { model: "BAAI/bge-large-en-v1.5", endpoints: ["embed", "rerank"] });
    expect(tei.status, await tei.clone().text()).toBe(200);
    const teiChute = (await tei.json()) as Json & { cords: { path: string; passthrough: boolean }[] };
    expect(teiChute.cords.map((cord) => [cord.path, cord.passthrough])).toEqual([
      ["/embed", true],
      ["/rerank", true],
    ]);
    expect(teiChute.node_selector).toMatchObject({ exclude: ["h200", "h100", "h100_sxm"] });

    const diffusion = await post(user, "/chutes/diffusion", {
      model: "stabilityai/stable-diffusion-xl-base-1.0",
      name: "sdxl",
      image: `chutes/vllm:0.7.2`,
      public: false,
    });
    expect(diffusion.status, await diffusion.clone().text()).toBe(200);
    expect(await diffusion.json()).toMatchObject({
      name: "sdxl",
      standard_template: "diffusion",
      cords: [{ path: "/generate", public_api_path: "/generate", output_content_type: "image/jpeg" }],
      node_selector: { min_vram_gb_per_gpu: 24 },
    });
    const noImage = await post(user, "/chutes/diffusion", { model: "a/b", name: "sd-two" });
    expect((await expectError(noImage, 400, "bad_request")).detail).toMatch(/No built public chutes\/diffusion image/);
    for (const model of ["not a repo", "org/..", "org/x//y"]) {
      await expectError(await post(user, "/chutes/vllm", { model }), 422, "validation_failed");
    }
    await expectError(
      await post(user, "/chutes/vllm", { model: "a/b", engine_args: { gpu_memory_utilization: 2 } }),
      422,
      "validation_failed",
    );
  });
});

// The security suite: each route with a valid request (fresh chutes where it needs them).
const images = new Map<string, Promise<UploadedImage>>();
const imageOf = (user: TestUser) => {
  let image = images.get(user.userId);
  if (!image) {
    image = builtImage(user);
    images.set(user.userId, image);
  }
  return image;
};
const chuteOf = async (user: TestUser) => deploy(user, deployBody((await imageOf(user)).image_id));
const CHUTES_READ = { object_type: "chutes", action: "read" };

runCommonRouteTests({
  name: "POST /chutes/",
  request: async (user) => deployRequest(deployBody((await imageOf(user)).image_id)),
  wrongScope: CHUTES_READ,
});
runCommonRouteTests({
  name: "GET /chutes/",
  request: () => ({ method: "GET", path: "/chutes/", purpose: "chutes" }),
  anonymousStatus: 200,
});
runCommonRouteTests({
  name: "GET /chutes/{id}",
  request: async (user) => ({ method: "GET", path: `/chutes/${(await chuteOf(user)).chute_id}`, purpose: "chutes" }),
  foreignRequest: async (_user, owner) => ({
    method: "GET",
    path: `/chutes/${(await chuteOf(owner)).chute_id}`,
    purpose: "chutes",
  }),
});
runCommonRouteTests({
  name: "PUT /chutes/{id}",
  request: async (user) => ({
    method: "PUT",
    path: `/chutes/${(await chuteOf(user)).chute_id}`,
    body: JSON.stringify({ tagline: "edited" }),
  }),
  foreignRequest: async (_user, owner) => ({
    method: "PUT",
    path: `/chutes/${(await chuteOf(owner)).chute_id}`,
    body: JSON.stringify({ tagline: "edited" }),
  }),
  wrongScope: CHUTES_READ,
});
runCommonRouteTests({
  name: "DELETE /chutes/{id}",
  request: async (user) => ({ method: "DELETE", path: `/chutes/${(await chuteOf(user)).chute_id}`, purpose: "chutes" }),
  foreignRequest: async (_user, owner) => ({
    method: "DELETE",
    path: `/chutes/${(await chuteOf(owner)).chute_id}`,
    purpose: "chutes",
  }),
});
for (const path of ["/chutes/share", "/chutes/unshare"]) {
  runCommonRouteTests({
    name: `POST ${path}`,
    request: async (user) => {
      const chute = await chuteOf(user);
      const friend = await registerUser();
      return {
        method: "POST",
        path,
        body: JSON.stringify({ chute_id_or_name: chute.chute_id, user_id_or_name: friend.userId }),
      };
    },
    foreignRequest: async (user, owner) => ({
      method: "POST",
      path,
      body: JSON.stringify({ chute_id_or_name: (await chuteOf(owner)).chute_id, user_id_or_name: user.userId }),
    }),
    wrongScope: CHUTES_READ,
  });
}
runCommonRouteTests({
  name: "POST /chutes/vllm",
  request: async (user) => ({
    method: "POST",
    path: "/chutes/vllm",
    body: JSON.stringify({
      model: `org/${uniqueName("m")}`,
      image: `${user.username}/${(await imageOf(user)).name}:0.1`,
      public: false,
    }),
  }),
  wrongScope: CHUTES_READ,
});

describe("scoped API keys on chutes", () => {
  it("let a key scoped to one chute read it and nothing else", async () => {
    const user = await registerUser();
    const [mine, other] = [await chuteOf(user), await chuteOf(user)];
    const key = await createKey(user, {
      admin: false,
      scopes: [{ object_type: "chutes", object_id: mine.chute_id, action: "read" }],
    });
    expect((await sendWithKey(key.secret_key, "GET", `/chutes/${mine.chute_id}`)).status).toBe(200);
    await expectError(await sendWithKey(key.secret_key, "GET", `/chutes/${other.chute_id}`), 403, "forbidden");
    await expectError(await sendWithKey(key.secret_key, "DELETE", `/chutes/${mine.chute_id}`), 403, "forbidden");
  });
});
