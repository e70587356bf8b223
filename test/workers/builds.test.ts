/**
 * The image build queue and its builder API inside workerd against real Postgres and
 * Redis: signed claims (bad signature, replay, unknown and disabled builders refused), the
 * build's log streaming live to a waiting upload (each retried batch stored once) and kept
 * in R2, results (only the holder's; `built` only when it says so), leases that lapse when a
 * builder dies (queued again, then failed with a clear error), deadlines, and the registry
 * front's push tokens (the build's own repository only) and presigned R2 blob redirects.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/client.ts";
import { imageBuilds, images } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import { registryHost } from "../../src/hosts/registry.ts";
import { toHex } from "../../src/lib/bytes.ts";
import { createLogger } from "../../src/lib/log.ts";
import { signServiceRequest } from "../../src/lib/service-signatures.ts";
import { BUILDER_SCHEME } from "../../src/schemas/builders.ts";
import { settleReaped } from "../../src/services/build-logs.ts";
import { type Builder, registerBuilder, setBuilderDisabled } from "../../src/services/builders.ts";
import { reapBuilds } from "../../src/services/builds.ts";
import { imageObjectKeys } from "../../src/services/images.ts";
import { cliHeaders } from "../support/chutes-cli.ts";
import { registerMiner, registerUser, sendSigned, setPermissions, type TestUser } from "./accounts.ts";
import { buildUpload, imageName, markImage } from "./catalogue.ts";
import { callHost, expectError } from "./helpers.ts";
import { connectMiner, isEvent } from "./miners.ts";
import { runCommonRouteTests } from "./route-security.ts";

const config = configFor(env);
const handle = openDatabase(config);
const db = handle.db;
const builders: Builder[] = [];
afterAll(async () => {
  // Builders seen recently make waiting uploads wait for them: retire this file's.
  for (const builder of builders) await setBuilderDisabled(db, builder.builderId, true);
  await handle.close();
});

interface TestBuilder {
  row: Builder;
  key: CryptoKey;
}

async function newBuilder(): Promise<TestBuilder> {
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const raw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
  const row = await registerBuilder(db, { name: `b-${crypto.randomUUID().slice(0, 8)}`, publicKey: toHex(raw) });
  builders.push(row);
  return { row, key: pair.privateKey };
}

async function builderRequest(
  builder: TestBuilder,
  method: "GET" | "POST",
  path: string,
  body?: unknown,
  signWith?: CryptoKey,
): Promise<Request> {
  const bytes = body === undefined ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(body));
  const headers = await signServiceRequest(BUILDER_SCHEME, signWith ?? builder.key, builder.row.builderId, {
    method,
    target: path,
    body: bytes,
  });
  return new Request(`http://api.localhost${path}`, {
    method,
    body: method === "POST" ? bytes : undefined,
    headers: { ...headers, "content-type": "application/json" },
  });
}

const call = async (builder: TestBuilder, method: "GET" | "POST", path: string, body?: unknown) =>
  callHost("api.localhost", path, await builderRequest(builder, method, path, body));

interface Job {
  image_id: string;
  attempt: number;
  repository: string;
  push_token: string;
  lease_ms: number;
}

/** Claims until `imageId` comes (other files' uploads may still be queued). */
async function claimUntil(builder: TestBuilder, imageId: string): Promise<Job> {
  for (let i = 0; i < 200; i++) {
    const res = await call(builder, "POST", "/builders/jobs/claim", { wait_ms: 0 });
    expect(res.status, res.status === 200 || res.status === 204 ? "" : await res.text()).not.toBe(500);
    if (res.status === 204) break;
    const { job } = (await res.json()) as { job: Job };
    if (job.image_id === imageId) return job;
  }
  throw new Error(`image ${imageId} was never claimed`);
}

async function upload(user: TestUser, wait = false): Promise<{ imageId: string; name: string; res: Response }> {
  const name = imageName();
  const res = await sendSigned(user.hotkey, buildUpload(user, { name, wait }));
  expect(res.status).toBe(202);
  const imageId = wait ? "" : String(((await res.clone().json()) as { image_id: string }).image_id);
  return { imageId, name, res };
}

const imageRow = async (imageId: string) => (await db.select().from(images).where(eq(images.imageId, imageId)))[0];
const jobRow = async (imageId: string) =>
  (await db.select().from(imageBuilds).where(eq(imageBuilds.imageId, imageId)))[0];
const logLines = (text: string) =>
  text
    .split("\n")
    .filter(Boolean)
    .map((line) => (line === "DONE" ? "DONE" : (JSON.parse(line.replace(/^data: /, "")) as { log: string }).log));
const uuid5 = async (name: string) => (await import("../support/chutes-cli.ts")).sdkUuid5(name);

describe("the builder API", () => {
  it("refuses unsigned, badly signed, replayed, unknown and disabled builders, changing nothing", async () => {
    const builder = await newBuilder();
    const path = "/builders/jobs/claim";
    await expectError(await callHost("api.localhost", path, { method: "POST", body: "{}" }), 401, "unauthorized");
    const other = await newBuilder();
    await expectError(
      await callHost("api.localhost", path, await builderRequest(builder, "POST", path, { wait_ms: 0 }, other.key)),
      401,
      "unauthorized",
    );
    const request = await builderRequest(builder, "POST", path, { wait_ms: 0 });
    const replay = request.clone();
    expect((await callHost("api.localhost", path, request)).status).not.toBe(401);
    await expectError(await callHost("api.localhost", path, replay), 401, "unauthorized");
    await setBuilderDisabled(db, builder.row.builderId, true);
    await expectError(await call(builder, "POST", path, { wait_ms: 0 }), 403, "forbidden");
  });

  it("streams a build's log live to a waiting upload, each batch once, then DONE and the R2 copy; miners see built", async () => {
    const builder = await newBuilder();
    const user = await registerUser();
    const miner = await connectMiner(await registerMiner());
    // The builder is online now (it made a request), so the upload waits for the build.
    expect((await call(builder, "POST", "/builders/jobs/claim", { wait_ms: 0 })).status).not.toBe(401);
    const { name, res } = await upload(user, true);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const imageId = await uuid5(`${user.username}/${name}:0.1`);
    const text = res.text();
    const job = await claimUntil(builder, imageId);
    expect(job).toMatchObject({ attempt: 1, repository: `${user.username.toLowerCase()}/${name}` });
    expect(job.push_token).toMatch(/^cbt_[0-9a-f]{32}_[0-9a-f]{64}$/);
    expect(await imageRow(imageId)).toMatchObject({ status: "building" });

    const context = await call(builder, "GET", `/builders/jobs/${imageId}/context`);
    expect(context.status).toBe(200);
    expect(new Uint8Array(await context.arrayBuffer())[0]).toBe(0x50);
    const dockerfile = await (await call(builder, "GET", `/builders/jobs/${imageId}/dockerfile`)).text();
    expect(dockerfile).toContain("RUN pip install --upgrade chutes==");

    const batch = {
      attempt: 1,
      seq: 0,
      lines: [
        { log_type: "stdout", log: "STEP 1/2" },
        { log_type: "stderr", log: "warn" },
      ],
    };
    for (let i = 0; i < 2; i++) {
      const posted = await call(builder, "POST", `/builders/jobs/${imageId}/logs`, batch);
      expect(await posted.json()).toMatchObject({ next_seq: 2 });
    }
    const gap = await call(builder, "POST", `/builders/jobs/${imageId}/logs`, { ...batch, seq: 5 });
    await expectError(gap, 409, "conflict");
    const more = { attempt: 1, seq: 2, lines: [{ log_type: "stdout", log: "STEP 2/2" }] };
    expect((await call(builder, "POST", `/builders/jobs/${imageId}/logs`, more)).status).toBe(200);
    const done = await call(builder, "POST", `/builders/jobs/${imageId}/result`, { attempt: 1, status: "built" });
    expect(await done.json()).toMatchObject({ status: "built", duplicate: false });
    const again = await call(builder, "POST", `/builders/jobs/${imageId}/result`, { attempt: 1, status: "built" });
    expect(await again.json()).toMatchObject({ status: "built", duplicate: true });

    const lines = logLines(await text);
    expect(lines.slice(1)).toEqual([
      "STEP 1/2",
      "warn",
      "STEP 2/2",
      `built and pushed ${user.username}/${name}:0.1`,
      "DONE",
    ]);
    expect(lines[0]).toMatch(/started on builder/);
    expect(await imageRow(imageId)).toMatchObject({ status: "built", buildError: null });
    const stored = await config.BUCKET.get(imageObjectKeys(user.userId, imageId).log);
    expect(logLines((await stored?.text()) ?? "")).toEqual(lines);
    const served = await sendSigned(user.hotkey, { method: "GET", path: `/images/${imageId}/logs`, purpose: "images" });
    expect(logLines(await served.text())).toEqual(lines);
    expect(
      await miner.frames.until(isEvent("image_updated", { image_id: imageId, status: "built and pushed" })),
    ).toBeTruthy();
    miner.ws.close(1000);
  });

  it("an error result marks the image error with its message; only the holder may act on a build", async () => {
    const builder = await newBuilder();
    const stranger = await newBuilder();
    const user = await registerUser();
    const { imageId } = await upload(user);
    await claimUntil(builder, imageId);
    for (const [method, path, body] of [
      ["POST", `/builders/jobs/${imageId}/heartbeat`, {}],
      ["GET", `/builders/jobs/${imageId}/context`, undefined],
      ["POST", `/builders/jobs/${imageId}/logs`, { attempt: 1, seq: 0, lines: [{ log_type: "stdout", log: "x" }] }],
      ["POST", `/builders/jobs/${imageId}/result`, { attempt: 1, status: "built" }],
    ] as const) {
      await expectError(await call(stranger, method, path, body), 409, "conflict");
    }
    expect(await imageRow(imageId)).toMatchObject({ status: "building" });
    expect((await call(builder, "POST", `/builders/jobs/${imageId}/heartbeat`, {})).status).toBe(200);
    const failed = await call(builder, "POST", `/builders/jobs/${imageId}/result`, {
      attempt: 1,
      status: "error",
      error: "the Dockerfile failed to build (buildah exited 1): boom",
    });
    expect(failed.status).toBe(200);
    expect(await imageRow(imageId)).toMatchObject({
      status: "error",
      buildError: "the Dockerfile failed to build (buildah exited 1): boom",
    });
    const shown = await sendSigned(user.hotkey, { method: "GET", path: `/images/${imageId}`, purpose: "images" });
    expect(await shown.json()).toMatchObject({
      status: "error: the Dockerfile failed to build (buildah exited 1): boom",
    });
    const log = await sendSigned(user.hotkey, { method: "GET", path: `/images/${imageId}/logs`, purpose: "images" });
    expect(logLines(await log.text()).at(-2)).toBe(
      "build failed: the Dockerfile failed to build (buildah exited 1): boom",
    );
  });

  it("a dead builder's lease lapses: the build is queued again, then failed after the last attempt", async () => {
    const dead = await newBuilder();
    const user = await registerUser();
    const { imageId } = await upload(user);
    const lapse = () =>
      db
        .update(imageBuilds)
        .set({ leaseExpiresAt: new Date(Date.now() - 1000) })
        .where(eq(imageBuilds.imageId, imageId));
    const settle = async () =>
      settleReaped({ config, log: createLogger("error") }, await reapBuilds({ db, now: () => new Date() }));

    await claimUntil(dead, imageId);
    await lapse();
    await settle();
    expect(await imageRow(imageId)).toMatchObject({ status: "pending" });
    expect(await jobRow(imageId)).toMatchObject({ status: "queued", attempts: 1, builderId: null });
    // The first builder's late heartbeat and result change nothing.
    await expectError(await call(dead, "POST", `/builders/jobs/${imageId}/heartbeat`, {}), 409, "conflict");

    const second = await newBuilder();
    expect(await claimUntil(second, imageId)).toMatchObject({ attempt: 2 });
    await lapse();
    await settle();
    const row = await imageRow(imageId);
    expect(row).toMatchObject({ status: "error" });
    expect(row?.buildError).toMatch(/abandoned: its builder stopped answering \(lease lapsed on all 2 attempts\)/);
    const log = await sendSigned(user.hotkey, { method: "GET", path: `/images/${imageId}/logs`, purpose: "images" });
    const lines = logLines(await log.text());
    expect(lines.some((line) => line.includes("queued again"))).toBe(true);
    expect(lines.at(-1)).toBe("DONE");
    await expectError(
      await call(second, "POST", `/builders/jobs/${imageId}/result`, { attempt: 2, status: "built" }),
      409,
      "conflict",
    );
  });

  it("fails a build past its deadline as timed out and refuses its late result", async () => {
    const builder = await newBuilder();
    const user = await registerUser();
    const { imageId } = await upload(user);
    await claimUntil(builder, imageId);
    await db
      .update(imageBuilds)
      .set({ deadlineAt: new Date(Date.now() - 1000) })
      .where(eq(imageBuilds.imageId, imageId));
    await expectError(
      await call(builder, "POST", `/builders/jobs/${imageId}/result`, { attempt: 1, status: "built" }),
      410,
      "gone",
    );
    await reapBuilds({ db, now: () => new Date() });
    expect((await imageRow(imageId))?.buildError).toMatch(/^the build timed out/);
  });
});

describe("builder registration (admin)", () => {
  it("lets only platform admins register builders", async () => {
    const user = await registerUser();
    const body = JSON.stringify({ name: `b-${crypto.randomUUID().slice(0, 8)}`, public_key: "ab".repeat(32) });
    await expectError(await sendSigned(user.hotkey, { method: "POST", path: "/builders", body }), 403, "forbidden");
    await setPermissions(user, ["admin"]);
    const res = await sendSigned(user.hotkey, { method: "POST", path: "/builders", body });
    expect(res.status).toBe(201);
    const row = (await res.json()) as { builder_id: string };
    const disabled = await sendSigned(user.hotkey, {
      method: "POST",
      path: `/builders/${row.builder_id}/disable`,
      body: "{}",
    });
    expect(await disabled.json()).toMatchObject({ disabled: true });
  });
});

describe("the registry front: builder pushes and R2 redirects", () => {
  // The push reaches a real docker-registry when the workers lane's global setup found one
  // (CI installs it); without it the front answers 503, and the allowed push is not checked.
  const origin = config.REGISTRY_ORIGIN_URL;
  if (!origin && process.env.CI) throw new Error("CI must provide docker-registry (REGISTRY_ORIGIN_URL)");

  it("lets a push token push its own repository only, and refuses it once the build is over", async () => {
    const builder = await newBuilder();
    const user = await registerUser();
    const { imageId, name } = await upload(user);
    const job = await claimUntil(builder, imageId);
    const basic = { authorization: `Basic ${btoa(`builder:${job.push_token}`)}` };
    const own = await callHost("registry.localhost", `/v2/${job.repository}/blobs/uploads/`, {
      method: "POST",
      headers: basic,
    });
    if (origin) {
      expect(own.status, await own.clone().text()).toBe(202);
      expect(own.headers.get("location")).toMatch(new RegExp(`^/v2/${job.repository}/blobs/uploads/`));
    } else expect(own.status).toBe(503);
    const elsewhere = await callHost("registry.localhost", "/v2/someone/else/blobs/uploads/", {
      method: "POST",
      headers: basic,
    });
    expect(elsewhere.status).toBe(403);
    expect(((await elsewhere.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe("DENIED");
    expect(name).toBe(job.repository.split("/")[1]);
    await call(builder, "POST", `/builders/jobs/${imageId}/result`, { attempt: 1, status: "error", error: "stopped" });
    const after = await callHost("registry.localhost", `/v2/${job.repository}/blobs/uploads/`, {
      method: "POST",
      headers: basic,
    });
    expect(after.status).toBe(401);
    expect(after.headers.get("www-authenticate")).toMatch(/^Basic realm=/);
  });

  it("redirects a miner's blob download to a presigned R2 URL when the origin stores in R2", async () => {
    const miner = await registerMiner();
    const hex = "ab".repeat(32);
    const path = `/v2/alice/app/blobs/sha256:${hex}`;
    const request = new Request(`http://registry.localhost${path}`, {
      headers: await cliHeaders(miner, { purpose: "registry" }),
    });
    const ctx = createExecutionContext();
    const res = await registryHost.fetch(
      request,
      {
        ...env,
        REGISTRY_STORAGE: "r2",
        REGISTRY_S3_ENDPOINT: "https://account.r2.cloudflarestorage.com",
        REGISTRY_S3_BUCKET: "registry",
        REGISTRY_S3_ROOT: "edge",
        REGISTRY_S3_ACCESS_KEY_ID: "AKIDEXAMPLE",
        REGISTRY_S3_SECRET_ACCESS_KEY: "secret",
      },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(307);
    const location = new URL(res.headers.get("location") ?? "");
    expect(location.origin + location.pathname).toBe(
      `https://account.r2.cloudflarestorage.com/registry/edge/docker/registry/v2/blobs/sha256/ab/${hex}/data`,
    );
    expect(location.searchParams.get("X-Amz-Expires")).toBe("300");
    expect(location.searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
    expect(location.searchParams.get("X-Amz-Credential")).toMatch(/^AKIDEXAMPLE\/\d{8}\/auto\/s3\/aws4_request$/);
  });
});

runCommonRouteTests({
  name: "GET /images/{ref}/logs",
  okContentType: /^text\/event-stream/,
  wrongScope: { object_type: "chutes", action: "read" },
  request: async (user) => {
    const { imageId } = await upload(user);
    await markImage(imageId, "error", "failed for the test");
    return { method: "GET", path: `/images/${imageId}/logs`, purpose: "images" };
  },
  foreignRequest: async (_user, owner) => {
    const { imageId } = await upload(owner);
    return { method: "GET", path: `/images/${imageId}/logs`, purpose: "images" };
  },
});
