import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createHostApp } from "../../src/app.ts";
import { ApiError } from "../../src/lib/errors.ts";
import { jsonBody, queryParams } from "../../src/lib/validation.ts";
import { testExecutionContext, validEnv } from "./fixtures.ts";

const env = validEnv;
const ctx = testExecutionContext;

function appWithRoutes() {
  const app = createHostApp();
  app.get("/api-error", () => {
    throw new ApiError("conflict", "That name is taken", { headers: { "x-extra": "1" } });
  });
  app.get("/crash", () => {
    throw new Error("database password is hunter2");
  });
  app.post("/json", async (c) =>
    c.json(await jsonBody(c, z.object({ name: z.string().min(3), count: z.number().int() }), { maxBytes: 64 })),
  );
  app.get("/query", (c) => c.json(queryParams(c, z.object({ page: z.coerce.number().int().min(0) }))));
  return app;
}

async function body(res: Response) {
  expect(res.headers.get("content-type")).toBe("application/json");
  return (await res.json()) as Record<string, unknown>;
}

describe("the one error shape", () => {
  it("renders ApiError with its status, code, headers and the request id", async () => {
    const res = await appWithRoutes().request("/api-error", {}, env, ctx);
    expect(res.status).toBe(409);
    expect(res.headers.get("x-extra")).toBe("1");
    const json = await body(res);
    expect(json).toEqual({
      detail: "That name is taken",
      code: "conflict",
      request_id: res.headers.get("x-request-id"),
    });
  });

  it("hides unexpected errors behind a generic 500", async () => {
    const res = await appWithRoutes().request("/crash", {}, env, ctx);
    expect(res.status).toBe(500);
    const json = await body(res);
    expect(json.code).toBe("internal");
    expect(JSON.stringify(json)).not.toContain("hunter2");
  });

  const post = (payload: string) =>
    appWithRoutes().request(
      "/json",
      { method: "POST", body: payload, headers: { "content-type": "application/json" } },
      env,
      ctx,
    );

  it("accepts a valid JSON body", async () => {
    const res = await post(JSON.stringify({ name: "abc", count: 2 }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: "abc", count: 2 });
  });

  it("answers malformed JSON with 400 invalid_json, not a 500", async () => {
    const res = await post("{nope");
    expect(res.status).toBe(400);
    expect((await body(res)).code).toBe("invalid_json");
  });

  it("answers wrong types with 422 and every located issue", async () => {
    const res = await post(JSON.stringify({ name: "x", count: "two" }));
    expect(res.status).toBe(422);
    const json = await body(res);
    expect(json.code).toBe("validation_failed");
    expect(json.errors).toEqual([
      { loc: ["body", "name"], msg: expect.any(String) },
      { loc: ["body", "count"], msg: expect.any(String) },
    ]);
  });

  it("answers an over-size body with 413 even when Content-Length is absent", async () => {
    const big = JSON.stringify({ name: "a".repeat(100), count: 1 });
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const res = await appWithRoutes().request(
      "/json",
      { method: "POST", body: stream, duplex: "half" } as RequestInit,
      env,
      ctx,
    );
    expect(res.status).toBe(413);
    expect((await body(res)).code).toBe("payload_too_large");
  });

  it("validates query parameters with 422", async () => {
    expect((await appWithRoutes().request("/query?page=2", {}, env, ctx)).status).toBe(200);
    const res = await appWithRoutes().request("/query?page=-1", {}, env, ctx);
    expect(res.status).toBe(422);
    expect((await body(res)).errors).toEqual([{ loc: ["query", "page"], msg: expect.any(String) }]);
  });

  it("answers an unknown route with 404 JSON", async () => {
    const res = await appWithRoutes().request("/missing", {}, env, ctx);
    expect(res.status).toBe(404);
    expect((await body(res)).code).toBe("not_found");
  });

  it("answers 500 config_invalid when the environment is invalid, without details", async () => {
    const res = await appWithRoutes().request("/api-error", {}, { ...env, DATABASE_URL: "nope" }, ctx);
    expect(res.status).toBe(500);
    const json = await body(res);
    expect(json.code).toBe("config_invalid");
    expect(String(json.detail)).not.toContain("DATABASE_URL");
  });
});
