/**
 * @module Test accounts for the workers lane: register users through the real API,
 * make signed or API-key requests as them, mint keys, and set permission bits in
 * Postgres (what the operator script does) for routes that need them.
 */
import { env, exports } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { expect } from "vitest";
import { openDatabase } from "../../src/db/client.ts";
import { metagraphNodes, users } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import { type Permission, permissionBits } from "../../src/lib/permissions.ts";
import { cliHeaders, pythonJsonDumps, randomHotkey, type SignOptions, type TestHotkey } from "../support/chutes-cli.ts";
import { callHost } from "./helpers.ts";

export const API_HOST = "api.localhost";

export interface TestUser {
  hotkey: TestHotkey;
  userId: string;
  username: string;
  fingerprint: string;
  paymentAddress: string;
  developerPaymentAddress: string;
}

export const uniqueName = (prefix = "u") => `${prefix}_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;

export interface SignedRequest {
  method: string;
  path: string;
  /** Sent as is and signed (unless `purpose` is given). */
  body?: string | Uint8Array;
  /** The body's Content-Type (default JSON). */
  contentType?: string;
  purpose?: string;
  /** The host it is for (default the API host). */
  host?: string;
  /** Extra headers (e.g. `Upgrade: websocket`). */
  headers?: Record<string, string>;
}

export type SignedRequestOptions = Omit<SignOptions, "purpose" | "body"> & { headers?: Record<string, string> };

/** `request` as a `Request` to the API host, signed by `key` the way the CLI signs. */
export async function signedRequest(
  key: TestHotkey,
  request: SignedRequest,
  options: SignedRequestOptions = {},
): Promise<Request> {
  const headers = await cliHeaders(key, {
    ...options,
    purpose: request.purpose,
    body: request.purpose === undefined ? request.body : undefined,
    contentType: request.contentType,
  });
  // A Headers object, so that names differing only in case replace each other instead of
  // being joined (a doubled multipart Content-Type would garble its boundary).
  const merged = new Headers({ "content-type": request.contentType ?? "application/json" });
  for (const extra of [request.headers, headers, options.headers]) {
    for (const [name, value] of Object.entries(extra ?? {})) merged.set(name, value);
  }
  return new Request(`http://${request.host ?? API_HOST}${request.path}`, {
    method: request.method,
    body: request.body,
    headers: merged,
  });
}

/** Sends `request` to the Worker, signed by `key` the way the CLI signs. */
export async function sendSigned(
  key: TestHotkey,
  request: SignedRequest,
  options: SignedRequestOptions = {},
): Promise<Response> {
  return exports.default.fetch(await signedRequest(key, request, options));
}

/** Registers a fresh user (or `key`) through `POST /users/register`. */
export async function registerUser(key: TestHotkey = randomHotkey(), username = uniqueName()): Promise<TestUser> {
  const res = await sendSigned(key, {
    method: "POST",
    path: "/users/register",
    body: pythonJsonDumps({ username, coldkey: randomHotkey().ss58 }),
  });
  const body = (await res.json()) as Record<string, string>;
  expect(res.status, JSON.stringify(body)).toBe(200);
  return {
    hotkey: key,
    userId: String(body.user_id),
    username,
    fingerprint: String(body.fingerprint),
    paymentAddress: String(body.payment_address),
    developerPaymentAddress: String(body.developer_payment_address),
  };
}

export interface CreatedKey {
  api_key_id: string;
  secret_key: string;
  admin: boolean;
  name: string;
  scopes: { scope_id: string; object_type: string; object_id: string | null; action: string | null }[];
}

/** Mints an API key for `user` (signed with its hotkey); admin unless scopes are given. */
export async function createKey(user: TestUser, body: Record<string, unknown> = {}): Promise<CreatedKey> {
  const res = await sendSigned(user.hotkey, {
    method: "POST",
    path: "/api_keys/",
    body: JSON.stringify({ name: uniqueName("k"), admin: true, ...body }),
  });
  const json = (await res.json()) as CreatedKey;
  expect(res.status, JSON.stringify(json)).toBe(200);
  return json;
}

/** A request authenticated by an API key in `Authorization: Basic`. */
export function sendWithKey(
  secret: string,
  method: string,
  path: string,
  body?: string | Uint8Array,
  options: Pick<SignedRequest, "host" | "headers" | "contentType"> = {},
): Promise<Response> {
  return callHost(options.host ?? API_HOST, path, {
    method,
    body,
    headers: {
      "content-type": options.contentType ?? "application/json",
      ...options.headers,
      authorization: `Basic ${secret}`,
    },
  });
}

/** Sets the user's permission bits directly, as `npm run admin:grant` does. */
export async function setPermissions(user: TestUser, names: Permission[]): Promise<void> {
  const { db, close } = openDatabase(configFor(env));
  try {
    await db
      .update(users)
      .set({ permissionsBitmask: permissionBits(names) })
      .where(eq(users.userId, user.userId));
  } finally {
    await close();
  }
}

/**
 * Registers `key` as a miner: a `metagraph_nodes` row on the configured netuid, as the
 * metagraph sync writes it.
 */
export async function registerMiner(key: TestHotkey = randomHotkey(), netuid?: number): Promise<TestHotkey> {
  const config = configFor(env);
  const { db, close } = openDatabase(config);
  try {
    await db.insert(metagraphNodes).values({
      hotkey: key.ss58,
      netuid: netuid ?? config.NETUID,
      nodeId: crypto.getRandomValues(new Uint16Array(1))[0] ?? 0,
      coldkey: randomHotkey().ss58,
      checksum: "test",
    });
  } finally {
    await close();
  }
  return key;
}
