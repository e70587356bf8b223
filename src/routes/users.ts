/**
 * @module `/users`: registration, the caller's profile, validator / subnet-owner linking
 * and fingerprint changes, in the shapes the chutes CLI 0.2.x reads (upstream-sdk.md §2).
 *
 * Upstream's `/users/login` (fingerprint → JWT) is not in its core tier and is not served.
 */
import { type Context, Hono } from "hono";
import type { AppEnv } from "../app.ts";
import type { Database } from "../db/client.ts";
import { type AuthEnv, requireUser, verifyHotkeySignature } from "../lib/auth.ts";
import { ApiError } from "../lib/errors.ts";
import { permissionNames } from "../lib/permissions.ts";
import { checkSignature, hotkeyHeaders } from "../lib/signatures.ts";
import { ss58PublicKey, verifySr25519 } from "../lib/sr25519.ts";
import { jsonBody, queryParams } from "../lib/validation.ts";
import { fingerprintBody, linkQuery, registerBody } from "../schemas/users.ts";
import {
  type AuthUser,
  authUserByHotkey,
  authUsersByColdkey,
  changeFingerprint,
  type LinkKind,
  linkHotkey,
  registerUser,
  userProfile,
} from "../services/users.ts";

/** `change_fingerprint` nonces are tighter than other signatures (upstream: ±30 s). */
const FINGERPRINT_WINDOW_SECONDS = 30;

async function selfResponse(db: Database, userId: string) {
  const profile = await userProfile(db, userId);
  if (!profile) throw new ApiError("unauthorized", "This account no longer exists.");
  return {
    username: profile.username,
    user_id: profile.userId,
    created_at: profile.createdAt.toISOString(),
    hotkey: profile.hotkey,
    coldkey: profile.coldkey,
    payment_address: profile.paymentAddress,
    developer_payment_address: profile.developerPaymentAddress,
    balance: Number(profile.balance),
    bonus_used: profile.bonusUsed,
    permissions_bitmask: profile.permissionsBitmask,
    permissions: permissionNames(profile.permissionsBitmask),
  };
}

async function link(c: Context<AuthEnv>, kind: LinkKind) {
  const query = queryParams(c, linkQuery);
  const { user } = c.var.auth;
  const allowed = kind === "validator" ? c.var.config.VALIDATOR_HOTKEYS : c.var.config.SUBNET_OWNER_HOTKEYS;
  const publicKey = ss58PublicKey(query.hotkey);
  const signature = query.signature.replace(/^0x/, "");
  if (
    !allowed.includes(query.hotkey) ||
    !publicKey ||
    !verifySr25519(`${query.hotkey}:${user.username}`, signature, publicKey)
  ) {
    throw new ApiError("unauthorized", "Invalid hotkey or signature.");
  }
  const result = await linkHotkey(c.var.deps.db, user.userId, kind, query.hotkey);
  if (!result.ok) {
    throw new ApiError(
      "conflict",
      result.username
        ? `Hotkey already associated with user ${result.username}`
        : "Hotkey already associated with another user",
    );
  }
  return c.json(await selfResponse(c.var.deps.db, user.userId));
}

export const usersRoutes = new Hono<AppEnv>()
  .post("/users/register", async (c) => {
    // Proof of the hotkey first (over the raw body, before it is parsed): upstream let
    // an unsigned request register any hotkey.
    const hotkey = await verifyHotkeySignature(c);
    const body = await jsonBody(c, registerBody);
    const result = await registerUser(c.var.deps, { hotkey, username: body.username, coldkey: body.coldkey });
    if (!result.ok) {
      throw new ApiError(
        "conflict",
        result.reason === "hotkey_taken"
          ? "This hotkey is already registered to a user!"
          : `Username ${body.username} already exists, sorry! Please choose another.`,
      );
    }
    const { user } = result;
    return c.json({
      username: user.username,
      user_id: user.userId,
      created_at: user.createdAt.toISOString(),
      hotkey: user.hotkey,
      coldkey: user.coldkey,
      payment_address: user.paymentAddress,
      developer_payment_address: user.developerPaymentAddress,
      fingerprint: user.fingerprint,
      api_key: null,
    });
  })
  .get("/users/me", requireUser({ purpose: "me" }), async (c) =>
    c.json(await selfResponse(c.var.deps.db, c.var.auth.user.userId)),
  )
  .get("/users/link_validator", requireUser({ purpose: "link_account" }), (c) => link(c, "validator"))
  .get("/users/link_subnet_owner", requireUser({ purpose: "link_account" }), (c) => link(c, "subnet_owner"))
  .post("/users/change_fingerprint", async (c) => {
    // Its own scheme: the key signs `{key}:{new fingerprint}:{nonce}` (no body hash),
    // with the coldkey when X-Chutes-Coldkey is sent, else the hotkey.
    const body = await jsonBody(c, fingerprintBody);
    const { hotkey, nonce, signature } = hotkeyHeaders(c.req.raw.headers);
    const coldkey = c.req.header("x-chutes-coldkey")?.trim() || undefined;
    const signer = coldkey ?? hotkey;
    if (!signer || !signature || !nonce) {
      throw new ApiError("unauthorized", "You must provide either coldkey or hotkey along with a signature and nonce.");
    }
    await checkSignature(
      {
        signer,
        nonce,
        signature,
        message: `${signer}:${body.fingerprint}:${nonce}`,
        windowSeconds: FINGERPRINT_WINDOW_SECONDS,
      },
      c.var.deps,
    );
    let user: AuthUser | null;
    if (coldkey) {
      const owners = await authUsersByColdkey(c.var.deps.db, coldkey);
      if (owners.length > 1) {
        throw new ApiError("conflict", "Several accounts share this coldkey: sign with the account's hotkey instead.");
      }
      user = owners[0] ?? null;
    } else {
      user = await authUserByHotkey(c.var.deps.db, signer);
    }
    if (!user) throw new ApiError("unauthorized", `No user found with the provided ${coldkey ? "coldkey" : "hotkey"}.`);
    if (!(await changeFingerprint(c.var.deps.db, user.userId, body.fingerprint))) {
      throw new ApiError("conflict", "That fingerprint cannot be used; choose another.");
    }
    return c.json({ status: "Fingerprint updated" });
  });
