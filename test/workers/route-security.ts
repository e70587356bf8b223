/**
 * @module The shared security suite every authenticated route runs (workers lane).
 *
 * ```ts
 * runCommonRouteTests({
 *   name: "GET /api_keys/{key}",
 *   request: async (user) => ({ method: "GET", path: `/api_keys/${(await createKey(user)).api_key_id}`, purpose: "api_keys" }),
 *   foreignRequest: async (user, owner) => ({ method: "GET", path: `/api_keys/${(await createKey(owner)).api_key_id}`, purpose: "api_keys" }),
 * });
 * ```
 *
 * It first proves the route answers `okStatus` to a correctly signed request, so every
 * failure below is caused by the one thing each case breaks: no credentials, a hotkey
 * without a signature, a signature by another key, a non-hex signature, a signature over
 * another payload, a nonce outside the window (past and future), a replayed signature,
 * an unregistered hotkey, another user's object (404), a deleted API key (401) and a
 * scoped key on a route that does not accept it (403). Miner routes (`actor: "miner"`,
 * e.g. the miner socket's upgrade, `okStatus: 101`) act as a freshly registered miner
 * hotkey and must refuse API keys altogether, even beside the miner's hotkey header.
 *
 * `request` must build a new, valid request each call (fresh names for creations).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { cliHeaders, randomHotkey, type TestHotkey } from "../support/chutes-cli.ts";
import {
  API_HOST,
  createKey,
  registerMiner,
  registerUser,
  type SignedRequest,
  sendSigned,
  sendWithKey,
  type TestUser,
} from "./accounts.ts";
import { callHost, expectError } from "./helpers.ts";

export interface RouteUnderTest {
  /** For test names, e.g. `GET /users/me`. */
  name: string;
  /** A valid request by `user` (the acting account). */
  request(user: TestUser): SignedRequest | Promise<SignedRequest>;
  /** The status the valid request gets (default 200). */
  okStatus?: number;
  /** A request by `user` for an object that belongs to `owner`: must be 404. */
  foreignRequest?(user: TestUser, owner: TestUser): SignedRequest | Promise<SignedRequest>;
  /**
   * Who acts: a registered user (default), a hotkey with no account (registration), or a
   * hotkey registered as a miner on the metagraph (miner routes; no user row).
   */
  actor?: "user" | "unregistered" | "miner";
  /** Whether admin API keys are accepted (default: yes, for routes that need a user). */
  apiKeys?: boolean;
  /** What a request without credentials gets: 401 (default), or e.g. 200 on a public list. */
  anonymousStatus?: number;
  /** The successful answer's Content-Type (default JSON). */
  okContentType?: RegExp;
  /** A scope the route must refuse (default: read on images). */
  wrongScope?: { object_type: string; action: string };
}

const SECONDS = 1000;

/** Asserts the success status; a WebSocket handed over (101) is closed again. */
async function expectOk(res: Response, okStatus: number, okContentType = /^application\/json/): Promise<void> {
  expect(res.status, res.status === okStatus ? "" : await res.clone().text()).toBe(okStatus);
  if (okStatus === 101) {
    res.webSocket?.accept();
    res.webSocket?.close(1000, "test done");
    return;
  }
  expect(res.headers.get("content-type")).toMatch(okContentType);
  await res.body?.cancel();
}

/** The same request with one more byte of body, or another purpose: what it signs changes. */
function withOtherPayload(request: SignedRequest): SignedRequest {
  if (request.purpose !== undefined) return { ...request, purpose: `${request.purpose}_other` };
  const body = request.body ?? "";
  return { ...request, body: typeof body === "string" ? `${body} ` : new Uint8Array([...body, 32]) };
}

export function runCommonRouteTests(route: RouteUnderTest): void {
  const okStatus = route.okStatus ?? 200;
  const actor = route.actor ?? "user";
  const needsUser = actor === "user";
  const apiKeys = route.apiKeys ?? needsUser;

  describe(`${route.name}: common security`, () => {
    let user: TestUser;
    let owner: TestUser;
    beforeAll(async () => {
      [user, owner] = await Promise.all([registerUser(), registerUser()]);
    });

    /** The acting key and a valid request for it. */
    const prepare = async (): Promise<{ key: TestHotkey; request: SignedRequest }> => {
      if (needsUser) return { key: user.hotkey, request: await route.request(user) };
      const key = actor === "miner" ? await registerMiner() : randomHotkey();
      return { key, request: await route.request({ ...user, hotkey: key }) };
    };

    it("answers a correctly signed request", async () => {
      const { key, request } = await prepare();
      await expectOk(await sendSigned(key, request), okStatus, route.okContentType);
    });

    it(`answers a request without credentials ${route.anonymousStatus ?? 401}`, async () => {
      const { request } = await prepare();
      const res = await callHost(request.host ?? API_HOST, request.path, {
        method: request.method,
        body: request.body,
        headers: request.headers,
      });
      if (route.anonymousStatus === undefined) await expectError(res, 401, "unauthorized");
      else expect(res.status).toBe(route.anonymousStatus);
    });

    it("refuses a hotkey without a signature (401), never skipping the check", async () => {
      const { key, request } = await prepare();
      const res = await sendSigned(key, request, { headers: { "X-Chutes-Signature": "" } });
      const body = await expectError(res, 401, "unauthorized");
      expect(body.detail).toMatch(/signature/i);
    });

    it("refuses a signature made by another key (401)", async () => {
      const { key, request } = await prepare();
      const forged = await sendSigned(randomHotkey(), request, { headers: { "X-Chutes-Hotkey": key.ss58 } });
      await expectError(forged, 401, "unauthorized");
    });

    it("refuses a signature that is not hex (401)", async () => {
      const { key, request } = await prepare();
      const res = await sendSigned(key, request, { headers: { "X-Chutes-Signature": "zz".repeat(64) } });
      await expectError(res, 401, "unauthorized");
    });

    it("refuses a signature over another payload (401)", async () => {
      const { key, request } = await prepare();
      // Signed for one payload, sent with the route's own: the signature no longer matches.
      const res = await sendSigned(key, request, {
        headers: await signatureHeadersFor(key, withOtherPayload(request)),
      });
      await expectError(res, 401, "unauthorized");
    });

    it("refuses nonces outside ±600 s, past and future (401)", async () => {
      for (const offset of [-601, 601]) {
        const { key, request } = await prepare();
        const nonce = Math.floor((Date.now() + offset * SECONDS) / SECONDS);
        const body = await expectError(await sendSigned(key, request, { nonce }), 401, "unauthorized");
        expect(body.detail).toMatch(/nonce/i);
      }
    });

    it("accepts a signature once and refuses its replay (401)", async () => {
      const { key, request } = await prepare();
      const headers = await signatureHeadersFor(key, request);
      await expectOk(await sendSigned(key, request, { headers }), okStatus, route.okContentType);
      const replay = await sendSigned(key, request, { headers });
      const body = await expectError(replay, 401, "unauthorized");
      expect(body.detail).toMatch(/already been used/);
    });

    if (needsUser) {
      it("refuses a valid signature from a hotkey with no account (401)", async () => {
        const request = await route.request(user);
        await expectError(await sendSigned(randomHotkey(), request), 401, "unauthorized");
      });
    }

    if (actor === "miner") {
      it("refuses a valid signature from a hotkey not registered on the subnet (401)", async () => {
        const key = randomHotkey();
        const request = await route.request({ ...user, hotkey: key });
        const body = await expectError(await sendSigned(key, request), 401, "unauthorized");
        expect(body.detail).toMatch(/not registered/);
      });

      it("refuses API keys, even beside the miner's hotkey header (401)", async () => {
        const { key, request } = await prepare();
        const adminKey = await createKey(user, { admin: true });
        const res = await sendWithKey(adminKey.secret_key, request.method, request.path, request.body, {
          ...request,
          headers: { ...request.headers, "X-Chutes-Hotkey": key.ss58 },
        });
        await expectError(res, 401, "unauthorized");
      });
    }

    const { foreignRequest } = route;
    if (foreignRequest) {
      it("answers 404 for another user's object", async () => {
        const request = await foreignRequest(user, owner);
        // Miner routes act as a registered miner; the object belongs to another one.
        const key = actor === "miner" ? await registerMiner() : user.hotkey;
        await expectError(await sendSigned(key, request), 404, "not_found");
      });
    }

    if (apiKeys) {
      it("accepts an admin API key, and refuses it once deleted (401)", async () => {
        const key = await createKey(user, { admin: true });
        const request = await route.request(user);
        await expectOk(
          await sendWithKey(key.secret_key, request.method, request.path, request.body, request),
          okStatus,
          route.okContentType,
        );
        const deleted = await sendSigned(user.hotkey, {
          method: "DELETE",
          path: `/api_keys/${key.api_key_id}`,
          purpose: "api_keys",
        });
        expect(deleted.status).toBe(200);
        const again = await route.request(user);
        await expectError(
          await sendWithKey(key.secret_key, again.method, again.path, again.body, again),
          401,
          "unauthorized",
        );
      });

      it("refuses an API key scoped for something else (403)", async () => {
        const scope = route.wrongScope ?? { object_type: "images", action: "read" };
        const key = await createKey(user, { admin: false, scopes: [scope] });
        const request = await route.request(user);
        await expectError(
          await sendWithKey(key.secret_key, request.method, request.path, request.body, request),
          403,
          "forbidden",
        );
      });
    }
  });
}

/** The three signature headers for `request`, to send with another request or twice. */
async function signatureHeadersFor(key: TestHotkey, request: SignedRequest): Promise<Record<string, string>> {
  const headers = await cliHeaders(key, {
    purpose: request.purpose,
    body: request.purpose === undefined ? request.body : undefined,
    contentType: request.contentType,
  });
  return {
    "X-Chutes-Hotkey": headers["X-Chutes-Hotkey"] ?? "",
    "X-Chutes-Nonce": headers["X-Chutes-Nonce"] ?? "",
    "X-Chutes-Signature": headers["X-Chutes-Signature"] ?? "",
  };
}
