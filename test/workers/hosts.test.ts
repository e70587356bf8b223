import { describe, expect, it } from "vitest";
import { callHost, expectError } from "./helpers.ts";

describe("host-first dispatch", () => {
  it("answers /ping on the API host when Postgres and Redis are up", async () => {
    const res = await callHost("api.localhost", "/ping");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(await res.json()).toEqual({ message: "pong" });
  });

  it("treats 127.0.0.1 and localhost as the API host in development", async () => {
    for (const host of ["127.0.0.1:8787", "localhost:8787", "localhost"]) {
      const res = await callHost(host, "/ping");
      expect(res.status, host).toBe(200);
    }
  });

  it("gives every request its own request id", async () => {
    const [a, b] = await Promise.all([callHost("api.localhost", "/ping"), callHost("api.localhost", "/ping")]);
    expect(a.headers.get("x-request-id")).not.toBe(b.headers.get("x-request-id"));
  });

  it("answers an unknown path on the API host with a 404 in the one error shape", async () => {
    const body = await expectError(await callHost("api.localhost", "/no/such/route"), 404, "not_found");
    expect(body.detail).toContain("/no/such/route");
  });

  it("answers an unknown host with 404 naming the host", async () => {
    for (const host of ["deep.sub.localhost", "example.com", "under_score.localhost"]) {
      const body = await expectError(await callHost(host, "/ping"), 404, "not_found");
      expect(body.detail).toContain(host.split(":")[0]);
    }
  });

  it("never serves REST routes on a chute host (host-first, not path-first)", async () => {
    const body = await expectError(await callHost("alice-mychute.localhost", "/ping"), 404, "not_found");
    expect(body.detail).toContain("alice-mychute.localhost");
  });

  it("does not treat prototype property names as fixed hosts", async () => {
    const res = await callHost("constructor.localhost", "/");
    await expectError(res, 404, "not_found");
  });

  it("routes llm., registry. and events. to their own apps", async () => {
    await expectError(await callHost("llm.localhost", "/ping"), 404, "not_found");
    const registry = await callHost("registry.localhost", "/ping");
    expect(registry.status).toBe(404);
    expect(((await registry.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe("NAME_UNKNOWN");
    await expectError(await callHost("events.localhost", "/"), 426, "upgrade_required");
  });

  it("asks for a WebSocket upgrade on the miner socket hosts", async () => {
    for (const host of ["socket.localhost", "ws.localhost"]) {
      await expectError(await callHost(host, "/"), 426, "upgrade_required");
    }
  });

  it("answers a wrong method with 404 JSON, not an HTML page", async () => {
    const res = await callHost("api.localhost", "/ping", { method: "DELETE" });
    await expectError(res, 404, "not_found");
  });
});
