import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { eq, sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/client.ts";
import { balances, users, wallets } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import { apiHost } from "../../src/hosts/api.ts";
import { uuid5 } from "../../src/lib/ids.ts";
import { fingerprintHash } from "../../src/services/users.ts";
import { walletAddress, walletAssociatedData } from "../../src/services/wallets.ts";
import {
  cliHeaders,
  hotkeyFromSeed,
  nowSeconds,
  pythonJsonDumps,
  randomHotkey,
  signText,
  TEST_SUBNET_OWNER,
  TEST_VALIDATORS,
  type TestHotkey,
} from "../support/chutes-cli.ts";
import { unsealMnemonic } from "../support/wallets.ts";
import {
  API_HOST,
  registerUser,
  sendSigned,
  setPermissions,
  signedRequest,
  type TestUser,
  uniqueName,
} from "./accounts.ts";
import { callHost, expectError } from "./helpers.ts";
import { runCommonRouteTests } from "./route-security.ts";

const config = configFor(env);
const [TEST_VALIDATOR, SECURITY_SUITE_VALIDATOR] = TEST_VALIDATORS;
const handle = openDatabase(config);
const db = handle.db;
afterAll(() => handle.close());

const register = (key: TestHotkey, body: string, headers: Record<string, string> = {}) =>
  sendSigned(key, { method: "POST", path: "/users/register", body }, { headers });

const usersWithHotkey = async (hotkey: string) =>
  (await db.select().from(users).where(eq(users.hotkey, hotkey))).length;

describe("POST /users/register", () => {
  it("registers with the CLI's exact request and answers what the CLI reads", async () => {
    const hotkey = randomHotkey();
    const coldkey = randomHotkey().ss58;
    const username = uniqueName("Reg");
    const res = await register(hotkey, pythonJsonDumps({ username, coldkey }));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(
      [
        "api_key",
        "coldkey",
        "created_at",
        "developer_payment_address",
        "fingerprint",
        "hotkey",
        "payment_address",
        "user_id",
        "username",
      ].sort(),
    );
    expect(body).toMatchObject({ username, hotkey: hotkey.ss58, coldkey, api_key: null });
    const fingerprint = String(body.fingerprint);
    expect(fingerprint).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(body.user_id).toBe(await uuid5(fingerprintHash(fingerprint)));
    expect(new Date(String(body.created_at)).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(body.payment_address).not.toBe(body.developer_payment_address);

    const [row] = await db
      .select()
      .from(users)
      .where(eq(users.userId, String(body.user_id)));
    expect(row).toMatchObject({
      username,
      hotkey: hotkey.ss58,
      coldkey,
      fingerprintHash: fingerprintHash(fingerprint),
      paymentAddress: body.payment_address,
      developerPaymentAddress: body.developer_payment_address,
      permissionsBitmask: 0,
    });
    expect(JSON.stringify(row)).not.toContain(fingerprint);
    const [balance] = await db
      .select()
      .from(balances)
      .where(eq(balances.userId, String(body.user_id)));
    expect(balance).toMatchObject({ balance: "0.0000000000", bonusUsed: false });
  });

  it("stores each wallet's mnemonic sealed twice (AES-GCM, then pgcrypto) and nowhere in clear", async () => {
    const user = await registerUser();
    const rows = await db
      .select({
        purpose: wallets.purpose,
        address: wallets.address,
        secret: wallets.secret,
        opened: sql<string>`pgp_sym_decrypt(decode(${wallets.secret}, 'hex'), ${config.PG_KEY})`,
      })
      .from(wallets)
      .where(eq(wallets.userId, user.userId));
    expect(rows.map((r) => r.purpose).sort()).toEqual(["developer", "payment"]);
    for (const row of rows) {
      expect(row.secret).toMatch(/^[0-9a-f]+$/);
      expect(row.opened).toMatch(/^v1:[0-9a-f]{24}:[0-9a-f]+$/);
      const mnemonic = await unsealMnemonic(
        row.opened,
        config.WALLET_KEY,
        walletAssociatedData(user.userId, row.purpose),
      );
      expect(mnemonic.split(" ")).toHaveLength(24);
      expect(walletAddress(mnemonic)).toBe(row.address);
      expect(row.address).toBe(row.purpose === "payment" ? user.paymentAddress : user.developerPaymentAddress);
      // The pgcrypto layer needs PG_KEY.
      await expect(
        db.execute(sql`select pgp_sym_decrypt(decode(${row.secret}, 'hex'), 'wrong key') as x`),
      ).rejects.toThrow();
    }
  });

  it("answers 409 for a hotkey that already has an account, creating nothing", async () => {
    const user = await registerUser();
    const username = uniqueName();
    const res = await register(user.hotkey, pythonJsonDumps({ username, coldkey: randomHotkey().ss58 }));
    const body = await expectError(res, 409, "conflict");
    expect(body.detail).toBe("This hotkey is already registered to a user!");
    expect(await db.select().from(users).where(eq(users.username, username))).toHaveLength(0);
  });

  it("answers 409 for a taken username, creating nothing", async () => {
    const user = await registerUser();
    const hotkey = randomHotkey();
    const res = await register(hotkey, pythonJsonDumps({ username: user.username, coldkey: randomHotkey().ss58 }));
    const body = await expectError(res, 409, "conflict");
    expect(body.detail).toBe(`Username ${user.username} already exists, sorry! Please choose another.`);
    expect(await usersWithHotkey(hotkey.ss58)).toBe(0);
  });

  it("treats usernames case-insensitively: they become slugs and registry names, which are lower case", async () => {
    const user = await registerUser();
    const hotkey = randomHotkey();
    const shouted =
      user.username.toUpperCase() === user.username ? user.username.toLowerCase() : user.username.toUpperCase();
    expect(shouted).not.toBe(user.username);
    const res = await register(hotkey, pythonJsonDumps({ username: shouted, coldkey: randomHotkey().ss58 }));
    await expectError(res, 409, "conflict");
    expect(await usersWithHotkey(hotkey.ss58)).toBe(0);
  });

  it("gives one of two racing registrations of a username a 409 and the other an account", async () => {
    const username = uniqueName();
    const [a, b] = await Promise.all(
      [randomHotkey(), randomHotkey()].map((key) =>
        register(key, pythonJsonDumps({ username, coldkey: randomHotkey().ss58 })),
      ),
    );
    expect([a?.status, b?.status].sort()).toEqual([200, 409]);
    expect(await db.select().from(users).where(eq(users.username, username))).toHaveLength(1);
  });

  it("validates every field with 422 and creates nothing", async () => {
    const cases: Record<string, unknown>[] = [
      { username: "ab", coldkey: randomHotkey().ss58 },
      { username: "way_too_long_name_", coldkey: randomHotkey().ss58 },
      { username: "bad-name!", coldkey: randomHotkey().ss58 },
      { username: "ünïcode", coldkey: randomHotkey().ss58 },
      { username: uniqueName(), coldkey: "not-an-address" },
      { username: uniqueName(), coldkey: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ" },
      { username: uniqueName() },
      { coldkey: randomHotkey().ss58 },
      { username: 12345, coldkey: randomHotkey().ss58 },
      { username: uniqueName(), coldkey: ["x"] },
    ];
    for (const payload of cases) {
      const hotkey = randomHotkey();
      const body = await expectError(await register(hotkey, JSON.stringify(payload)), 422, "validation_failed");
      expect(body.detail, JSON.stringify(payload)).toMatch(/^Invalid request: body\./);
      expect(await usersWithHotkey(hotkey.ss58)).toBe(0);
    }
    const badName = await register(randomHotkey(), JSON.stringify({ username: "a", coldkey: randomHotkey().ss58 }));
    expect((await badName.json()) as object).toMatchObject({
      errors: [{ loc: ["body", "username"], msg: expect.stringMatching(/3-15 characters/) }],
    });
  });

  it("answers malformed JSON with 400, an array with 422, an over-size body with 413", async () => {
    const hotkey = randomHotkey();
    await expectError(await register(hotkey, '{"username": "abc", '), 400, "invalid_json");
    await expectError(await register(hotkey, "[]"), 422, "validation_failed");
    const huge = pythonJsonDumps({ username: uniqueName(), coldkey: "x".repeat(1024 * 1024) });
    await expectError(await register(hotkey, huge), 413, "payload_too_large");
    expect(await usersWithHotkey(hotkey.ss58)).toBe(0);
  });

  it("requires proof of the hotkey: no signature is a 401, not an unsigned registration", async () => {
    const hotkey = randomHotkey();
    const body = pythonJsonDumps({ username: uniqueName(), coldkey: randomHotkey().ss58 });
    const res = await callHost(API_HOST, "/users/register", {
      method: "POST",
      body,
      headers: { "content-type": "application/json", "X-Chutes-Hotkey": hotkey.ss58 },
    });
    await expectError(res, 401, "unauthorized");
    expect(await usersWithHotkey(hotkey.ss58)).toBe(0);
  });

  runCommonRouteTests({
    name: "POST /users/register",
    actor: "unregistered",
    request: () => ({
      method: "POST",
      path: "/users/register",
      body: pythonJsonDumps({ username: uniqueName(), coldkey: randomHotkey().ss58 }),
    }),
  });
});

describe("GET /users/me", () => {
  it("answers the caller's profile (SelfResponse) for the SDK's purpose `me`", async () => {
    const user = await registerUser();
    const res = await sendSigned(user.hotkey, { method: "GET", path: "/users/me", purpose: "me" });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toEqual({
      username: user.username,
      user_id: user.userId,
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      hotkey: user.hotkey.ss58,
      coldkey: expect.any(String),
      payment_address: user.paymentAddress,
      developer_payment_address: user.developerPaymentAddress,
      balance: 0,
      bonus_used: false,
      permissions_bitmask: 0,
      permissions: [],
    });
    expect(JSON.stringify(body)).not.toMatch(/secret|mnemonic|fingerprint/);
  });

  it("lists granted permissions by name", async () => {
    const user = await registerUser();
    await setPermissions(user, ["unlimited", "developer"]);
    const res = await sendSigned(user.hotkey, { method: "GET", path: "/users/me", purpose: "me" });
    expect(await res.json()).toMatchObject({ permissions_bitmask: 33, permissions: ["developer", "unlimited"] });
  });

  it("checks X-Chutes-UserID against the signer when the CLI sends it", async () => {
    const user = await registerUser();
    const other = await registerUser();
    const me = { method: "GET", path: "/users/me", purpose: "me" };
    expect((await sendSigned(user.hotkey, me, { userId: user.userId })).status).toBe(200);
    await expectError(await sendSigned(user.hotkey, me, { userId: other.userId }), 401, "unauthorized");
  });

  it("fails closed with 503 when the replay cache is unreachable", async () => {
    const user = await registerUser();
    const ctx = createExecutionContext();
    const res = await apiHost.fetch(
      await signedRequest(user.hotkey, { method: "GET", path: "/users/me", purpose: "me" }),
      { ...env, UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1" },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    const body = await expectError(res, 503, "dependency_unavailable");
    expect(body.detail).toMatch(/replay/);
    expect(res.headers.get("retry-after")).toBe("5");
  });

  runCommonRouteTests({
    name: "GET /users/me",
    request: () => ({ method: "GET", path: "/users/me", purpose: "me" }),
  });
});

describe("GET /users/link_validator and /users/link_subnet_owner", () => {
  const linkPath = (kind: string, linked: TestHotkey, user: TestUser, signature?: string) =>
    `/users/link_${kind}?hotkey=${linked.ss58}&signature=${signature ?? signText(linked, `${linked.ss58}:${user.username}`)}`;

  it("links a configured validator hotkey, making the account free and a developer", async () => {
    const user = await registerUser();
    const res = await sendSigned(user.hotkey, {
      method: "GET",
      path: linkPath("validator", TEST_VALIDATOR, user),
      purpose: "link_account",
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      user_id: user.userId,
      permissions: ["developer", "free_account"],
      permissions_bitmask: 17,
    });
    const [row] = await db.select().from(users).where(eq(users.userId, user.userId));
    expect(row?.validatorHotkey).toBe(TEST_VALIDATOR.ss58);

    const second = await registerUser();
    const taken = await sendSigned(second.hotkey, {
      method: "GET",
      path: linkPath("validator", TEST_VALIDATOR, second),
      purpose: "link_account",
    });
    const body = await expectError(taken, 409, "conflict");
    expect(body.detail).toBe(`Hotkey already associated with user ${user.username}`);
  });

  it("refuses hotkeys that are not configured, and signatures that do not match", async () => {
    const user = await registerUser();
    const stranger = hotkeyFromSeed("01".repeat(32));
    for (const path of [
      linkPath("subnet_owner", stranger, user),
      linkPath("validator", TEST_SUBNET_OWNER, user),
      linkPath(
        "subnet_owner",
        TEST_SUBNET_OWNER,
        user,
        signText(TEST_SUBNET_OWNER, `${TEST_SUBNET_OWNER.ss58}:someone`),
      ),
    ]) {
      const res = await sendSigned(user.hotkey, { method: "GET", path, purpose: "link_account" });
      const body = await expectError(res, 401, "unauthorized");
      expect(body.detail).toBe("Invalid hotkey or signature.");
    }
    const bad = await sendSigned(user.hotkey, {
      method: "GET",
      path: "/users/link_validator?hotkey=nope&signature=00",
      purpose: "link_account",
    });
    await expectError(bad, 422, "validation_failed");
    const [row] = await db.select().from(users).where(eq(users.userId, user.userId));
    expect(row).toMatchObject({ validatorHotkey: null, subnetOwnerHotkey: null, permissionsBitmask: 0 });
  });

  // Each suite links one configured hotkey to its own user, again and again (idempotent).
  for (const [kind, linked] of [
    ["validator", SECURITY_SUITE_VALIDATOR],
    ["subnet_owner", TEST_SUBNET_OWNER],
  ] as const) {
    runCommonRouteTests({
      name: `GET /users/link_${kind}`,
      request: (user) => ({ method: "GET", path: linkPath(kind, linked, user), purpose: "link_account" }),
    });
  }
});

describe("POST /users/change_fingerprint", () => {
  const change = async (
    signer: TestHotkey,
    fingerprint: string,
    options: { nonce?: number; header?: "X-Chutes-Hotkey" | "X-Chutes-Coldkey"; sign?: TestHotkey } = {},
  ) => {
    const nonce = String(options.nonce ?? nowSeconds());
    const signature = signText(options.sign ?? signer, `${signer.ss58}:${fingerprint}:${nonce}`);
    return callHost(API_HOST, "/users/change_fingerprint", {
      method: "POST",
      body: pythonJsonDumps({ fingerprint }),
      headers: {
        "content-type": "application/json",
        [options.header ?? "X-Chutes-Hotkey"]: signer.ss58,
        "X-Chutes-Nonce": nonce,
        "X-Chutes-Signature": signature,
      },
    });
  };
  const hashOf = async (userId: string) =>
    (await db.select().from(users).where(eq(users.userId, userId)))[0]?.fingerprintHash;

  it("replaces the fingerprint when the hotkey signs it, keeping the user id", async () => {
    const user = await registerUser();
    const fingerprint = `new-${uniqueName()}-fingerprint`;
    const res = await change(user.hotkey, fingerprint);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "Fingerprint updated" });
    expect(await hashOf(user.userId)).toBe(fingerprintHash(fingerprint));
  });

  it("accepts the coldkey's signature, verified with the coldkey (not the hotkey)", async () => {
    const coldkey = randomHotkey();
    const hotkey = randomHotkey();
    const res = await register(hotkey, pythonJsonDumps({ username: uniqueName(), coldkey: coldkey.ss58 }));
    expect(res.status).toBe(200);
    const userId = String(((await res.json()) as Record<string, unknown>).user_id);
    const forged = await change(coldkey, "fingerprint-signed-by-hot", { header: "X-Chutes-Coldkey", sign: hotkey });
    await expectError(forged, 401, "unauthorized");
    const fingerprint = `cold-${uniqueName()}-fingerprint`;
    expect((await change(coldkey, fingerprint, { header: "X-Chutes-Coldkey" })).status).toBe(200);
    expect(await hashOf(userId)).toBe(fingerprintHash(fingerprint));
  });

  it("refuses a coldkey that several accounts share (409)", async () => {
    const coldkey = randomHotkey();
    for (let i = 0; i < 2; i++) {
      const res = await register(randomHotkey(), pythonJsonDumps({ username: uniqueName(), coldkey: coldkey.ss58 }));
      expect(res.status).toBe(200);
    }
    await expectError(
      await change(coldkey, "shared-coldkey-fingerprint", { header: "X-Chutes-Coldkey" }),
      409,
      "conflict",
    );
  });

  it("holds nonces to ±30 s, refuses replays, bad and missing signatures, and unknown keys", async () => {
    const user = await registerUser();
    const before = await hashOf(user.userId);
    await expectError(
      await change(user.hotkey, "stale-nonce-fingerprint", { nonce: nowSeconds() - 31 }),
      401,
      "unauthorized",
    );
    await expectError(
      await change(user.hotkey, "wrong-signer-fingerprint", { sign: randomHotkey() }),
      401,
      "unauthorized",
    );
    await expectError(await change(randomHotkey(), "unknown-hotkey-fingerprint"), 401, "unauthorized");
    const nonce = String(nowSeconds());
    const signature = signText(user.hotkey, `${user.hotkey.ss58}:replayed-fingerprint-1:${nonce}`);
    const request = () =>
      callHost(API_HOST, "/users/change_fingerprint", {
        method: "POST",
        body: JSON.stringify({ fingerprint: "replayed-fingerprint-1" }),
        headers: {
          "X-Chutes-Hotkey": user.hotkey.ss58,
          "X-Chutes-Nonce": nonce,
          "X-Chutes-Signature": signature,
        },
      });
    const first = await request();
    expect(first.status).toBe(200);
    const replay = await request();
    expect((await expectError(replay, 401, "unauthorized")).detail).toMatch(/already been used/);
    const unsigned = await callHost(API_HOST, "/users/change_fingerprint", {
      method: "POST",
      body: JSON.stringify({ fingerprint: "unsigned-fingerprint" }),
      headers: { "X-Chutes-Hotkey": user.hotkey.ss58, "X-Chutes-Nonce": nonce },
    });
    await expectError(unsigned, 401, "unauthorized");
    expect(await hashOf(user.userId)).toBe(fingerprintHash("replayed-fingerprint-1"));
    expect(before).not.toBe(await hashOf(user.userId));
  });

  it("validates the new fingerprint (422) and bad JSON (400)", async () => {
    const user = await registerUser();
    await expectError(await change(user.hotkey, "short"), 422, "validation_failed");
    await expectError(await change(user.hotkey, "has spaces in the fingerprint"), 422, "validation_failed");
    const res = await callHost(API_HOST, "/users/change_fingerprint", { method: "POST", body: "{" });
    await expectError(res, 400, "invalid_json");
  });
});

describe("GET /developer_deposit", () => {
  it("answers unsigned with the configured deposit and its TAO estimate at the current price", async () => {
    const res = await callHost(API_HOST, "/developer_deposit");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      usd: config.DEVELOPER_DEPOSIT_USD,
      tao_estimate: config.DEVELOPER_DEPOSIT_USD / 400,
      message: expect.any(String),
    });
    const ctx = createExecutionContext();
    const priced = await apiHost.request(
      `http://${API_HOST}/developer_deposit`,
      {},
      { ...env, DEVELOPER_DEPOSIT_USD: "250" },
      ctx,
    );
    // The dev price feed quotes TAO at $400.
    expect(await priced.json()).toMatchObject({ usd: 250, tao_estimate: 0.625 });
  });
});

// Keeps the CLI-style helper honest: an empty body signs the purpose, as the CLI does.
describe("test signing helper", () => {
  it("signs the purpose when there is no body", async () => {
    const key = randomHotkey();
    const headers = await cliHeaders(key, { purpose: "me", nonce: 1 });
    expect(headers["X-Chutes-Nonce"]).toBe("1");
    expect(headers["Content-Type"]).toBeUndefined();
  });
});
