import { describe, expect, it } from "vitest";
import { classifyHost, classifyUrl } from "../../src/hosts/classify.ts";

const prod = { baseDomain: "chutes.ai", loopbackIsApi: false };
const dev = { baseDomain: "localhost", loopbackIsApi: true };

describe("classifyHost", () => {
  it.each([
    ["api.chutes.ai", { kind: "api" }],
    ["API.Chutes.AI.", { kind: "api" }],
    ["chutes.ai", { kind: "api" }],
    ["llm.chutes.ai", { kind: "llm" }],
    ["socket.chutes.ai", { kind: "socket" }],
    ["ws.chutes.ai", { kind: "socket" }],
    ["events.chutes.ai", { kind: "events" }],
    ["registry.chutes.ai", { kind: "registry" }],
    ["alice-my-chute.chutes.ai", { kind: "chute", slug: "alice-my-chute" }],
    ["a.b.chutes.ai", { kind: "unknown" }],
    ["-bad.chutes.ai", { kind: "unknown" }],
    ["bad-.chutes.ai", { kind: "unknown" }],
    ["under_score.chutes.ai", { kind: "unknown" }],
    ["evilchutes.ai", { kind: "unknown" }],
    ["example.com", { kind: "unknown" }],
    ["127.0.0.1", { kind: "unknown" }],
    ["localhost", { kind: "unknown" }],
    ["__proto__.chutes.ai", { kind: "unknown" }],
    ["constructor.chutes.ai", { kind: "chute", slug: "constructor" }],
  ])("production: %s", (host, expected) => {
    expect(classifyHost(host, prod)).toEqual(expected);
  });

  it.each([
    ["api.localhost", { kind: "api" }],
    ["localhost", { kind: "api" }],
    ["127.0.0.1", { kind: "api" }],
    ["[::1]", { kind: "api" }],
    ["bob-x.localhost", { kind: "chute", slug: "bob-x" }],
  ])("development: %s", (host, expected) => {
    expect(classifyHost(host, dev)).toEqual(expected);
  });
});

describe("classifyUrl", () => {
  it("serves the registry's /v2 paths on bare loopback hosts in development only (Go cannot resolve registry.localhost)", () => {
    expect(classifyUrl(new URL("http://127.0.0.1:8787/v2/"), dev)).toEqual({ kind: "registry" });
    expect(classifyUrl(new URL("http://localhost:8787/v2/u/n/manifests/1"), dev)).toEqual({ kind: "registry" });
    expect(classifyUrl(new URL("http://127.0.0.1:8787/v2x"), dev)).toEqual({ kind: "api" });
    expect(classifyUrl(new URL("http://api.localhost:8787/v2/"), dev)).toEqual({ kind: "api" });
    expect(classifyUrl(new URL("https://chutes.ai/v2/"), prod)).toEqual({ kind: "api" });
  });
});
