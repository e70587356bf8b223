/**
 * Which miner hosts the validator calls: public IP literals (v4, v6, v4-mapped) only,
 * loopback only when configured, and DNS names only when every A/AAAA record is public.
 * DNS answers come from a small local DoH server (a real HTTP server, the JSON API shape).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkIpLiteral, checkMinerHost } from "../../src/lib/miner-hosts.ts";

describe("IP literals", () => {
  it.each([
    ["8.8.8.8", true],
    ["203.0.114.9", true],
    ["2606:4700:4700::1111", true],
    ["[2606:4700::6810:84e5]", true],
    ["10.1.2.3", false],
    ["172.16.0.1", false],
    ["172.31.255.255", false],
    ["192.168.0.1", false],
    ["100.64.0.1", false],
    ["169.254.169.254", false],
    ["0.0.0.0", false],
    ["224.0.0.1", false],
    ["255.255.255.255", false],
    ["192.0.2.1", false],
    ["127.0.0.1", false],
    ["::1", false],
    ["::", false],
    ["fc00::1", false],
    ["fd12:3456::1", false],
    ["fe80::1", false],
    ["ff02::1", false],
    ["::ffff:10.0.0.1", false],
    ["::ffff:8.8.8.8", true],
    ["2001:db8::1", false],
  ])("%s public: %s", (host, ok) => {
    expect(checkIpLiteral(host, false)?.ok).toBe(ok);
  });

  it("allows loopback (v4 and v6) only when configured", () => {
    expect(checkIpLiteral("127.0.0.1", true)).toEqual({ ok: true });
    expect(checkIpLiteral("::1", true)).toEqual({ ok: true });
    expect(checkIpLiteral("10.0.0.1", true)?.ok).toBe(false);
  });

  it("is not fooled by malformed literals", () => {
    expect(checkIpLiteral("256.1.1.1", false)).toBeNull();
    expect(checkIpLiteral("1:2:3:4:5:6:7:8:9", false)).toBeNull();
    expect(checkIpLiteral("1::2::3", false)).toBeNull();
    expect(checkIpLiteral("example.com", false)).toBeNull();
  });
});

describe("DNS names (over a local DoH server)", () => {
  const records: Record<string, { A?: string[]; AAAA?: string[]; hang?: boolean }> = {
    "public.example.net": { A: ["93.184.216.34"], AAAA: ["2606:2800:220:1::1"] },
    "mixed.example.net": { A: ["93.184.216.34", "10.0.0.5"] },
    "rebind.example.net": { AAAA: ["::1"] },
    "empty.example.net": {},
    "slow.example.net": { hang: true },
  };
  let server: http.Server;
  let dohUrl = "";
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      const entry = records[url.searchParams.get("name") ?? ""];
      if (entry?.hang) return;
      const type = url.searchParams.get("type") as "A" | "AAAA";
      const Answer = (entry?.[type] ?? []).map((data) => ({ type: type === "A" ? 1 : 28, data }));
      res.writeHead(200, { "content-type": "application/dns-json" });
      res.end(JSON.stringify({ Status: 0, Answer }));
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    dohUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/dns-query`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });
  const check = (host: string, allowLoopback = false) =>
    checkMinerHost(host, { allowLoopback, dohUrl, timeoutMs: 500 });

  it("accepts a name whose every record is public", async () => {
    expect(await check("public.example.net")).toEqual({ ok: true });
  });

  it("refuses a name with any private record, one with none, and one whose resolution hangs", async () => {
    expect(await check("mixed.example.net")).toMatchObject({ ok: false, reason: expect.stringMatching(/10\.0\.0\.5/) });
    expect(await check("rebind.example.net")).toMatchObject({ ok: false, reason: expect.stringMatching(/::1/) });
    expect(await check("empty.example.net")).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/no A or AAAA/),
    });
    expect(await check("slow.example.net")).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/could not be resolved/),
    });
  });

  it("refuses names that are not names, and localhost unless loopback is allowed", async () => {
    expect(await check("-bad-.example.net")).toMatchObject({ ok: false });
    expect(await check("single")).toMatchObject({ ok: false });
    expect(await check("localhost")).toMatchObject({ ok: false });
    expect(await check("localhost", true)).toEqual({ ok: true });
  });
});
