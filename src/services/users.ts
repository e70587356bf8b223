/**
 * @module Users: registration (fingerprint, id, wallets, balance in one transaction),
 * the profile the CLI reads, linking validator / subnet-owner hotkeys, fingerprint
 * changes, and the lookups authentication needs.
 *
 * Ids and hashes follow upstream so existing tooling agrees with them:
 * fingerprint = 32 characters of [A-Za-z0-9] (from a CSPRNG here), fingerprint_hash =
 * BLAKE2b-512 hex of it, user_id = uuid5(NAMESPACE_OID, initial fingerprint_hash).
 */
import { blake2AsU8a } from "@polkadot/util-crypto/blake2";
import { and, eq, ne, or, sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { redactedDatabaseError, uniqueViolation } from "../db/errors.ts";
import { balances, payments, users, wallets } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";
import { toHex, utf8 } from "../lib/bytes.ts";
import { randomAlphanumeric } from "../lib/crypto.ts";
import { uuid5 } from "../lib/ids.ts";
import { PERMISSIONS } from "../lib/permissions.ts";
import { generateWallet, sealMnemonic, type WalletPurpose, walletAssociatedData, walletSecretSql } from "./wallets.ts";

/** Who a request acts as: what authorization needs, nothing more. */
export interface AuthUser {
  userId: string;
  username: string;
  hotkey: string | null;
  permissionsBitmask: number;
}

const authUserColumns = {
  userId: users.userId,
  username: users.username,
  hotkey: users.hotkey,
  permissionsBitmask: users.permissionsBitmask,
};

export async function authUserByHotkey(db: Database, hotkey: string): Promise<AuthUser | null> {
  const [row] = await db.select(authUserColumns).from(users).where(eq(users.hotkey, hotkey));
  return row ?? null;
}

export function newFingerprint(): string {
  return randomAlphanumeric(32);
}

export function fingerprintHash(fingerprint: string): string {
  return toHex(blake2AsU8a(utf8(fingerprint), 512, undefined, true));
}

export interface RegisteredUser {
  userId: string;
  username: string;
  hotkey: string;
  coldkey: string;
  paymentAddress: string;
  developerPaymentAddress: string;
  createdAt: Date;
  /** The account's password, shown once and stored only as its hash. */
  fingerprint: string;
}

export type RegisterResult =
  | { ok: true; user: RegisteredUser }
  | { ok: false; reason: "hotkey_taken" | "username_taken" };

export interface RegisterDeps {
  db: Database;
  config: { WALLET_KEY: string; PG_KEY: string };
}

/**
 * Creates a user with its two wallets and a zero balance, all or nothing. A taken hotkey
 * or username is a result, not an exception (checked first, and again by the unique
 * indexes when two registrations race).
 */
export async function registerUser(
  deps: RegisterDeps,
  input: { username: string; hotkey: string; coldkey: string },
): Promise<RegisterResult> {
  const { db, config } = deps;
  const taken = await db
    .select({ hotkey: users.hotkey, username: users.username })
    .from(users)
    .where(or(eq(users.hotkey, input.hotkey), sql`lower(${users.username}) = lower(${input.username})`));
  if (taken.some((row) => row.hotkey === input.hotkey)) return { ok: false, reason: "hotkey_taken" };
  if (taken.length > 0) return { ok: false, reason: "username_taken" };

  const fingerprint = newFingerprint();
  const hash = fingerprintHash(fingerprint);
  const userId = await uuid5(hash);
  const sealed = async (purpose: WalletPurpose) => {
    const wallet = generateWallet();
    const secret = await sealMnemonic(wallet.mnemonic, config.WALLET_KEY, walletAssociatedData(userId, purpose));
    return { userId, purpose, address: wallet.address, secret: walletSecretSql(secret, config.PG_KEY) };
  };
  const payment = await sealed("payment");
  const developer = await sealed("developer");

  try {
    const createdAt = await db.transaction(async (tx) => {
      const [row] = await tx
        .insert(users)
        .values({
          userId,
          username: input.username,
          hotkey: input.hotkey,
          coldkey: input.coldkey,
          fingerprintHash: hash,
          paymentAddress: payment.address,
          developerPaymentAddress: developer.address,
        })
        .returning({ createdAt: users.createdAt });
      await tx.insert(wallets).values([payment, developer]);
      await tx.insert(balances).values({ userId });
      return row?.createdAt ?? new Date();
    });
    return {
      ok: true,
      user: {
        userId,
        username: input.username,
        hotkey: input.hotkey,
        coldkey: input.coldkey,
        paymentAddress: payment.address,
        developerPaymentAddress: developer.address,
        createdAt,
        fingerprint,
      },
    };
  } catch (error) {
    const constraint = uniqueViolation(error);
    if (constraint === "users_hotkey_key") return { ok: false, reason: "hotkey_taken" };
    if (constraint === "users_username_key") return { ok: false, reason: "username_taken" };
    // The wallet INSERT's parameters hold the sealed mnemonics and PG_KEY: never let
    // them reach a log line through the error message.
    throw redactedDatabaseError(error);
  }
}

export interface UserProfile {
  userId: string;
  username: string;
  hotkey: string | null;
  coldkey: string;
  paymentAddress: string;
  developerPaymentAddress: string;
  permissionsBitmask: number;
  createdAt: Date;
  /** USD, exact decimal string. */
  balance: string;
  bonusUsed: boolean;
}

export async function userProfile(db: Database, userId: string): Promise<UserProfile | null> {
  const [row] = await db
    .select({
      userId: users.userId,
      username: users.username,
      hotkey: users.hotkey,
      coldkey: users.coldkey,
      paymentAddress: users.paymentAddress,
      developerPaymentAddress: users.developerPaymentAddress,
      permissionsBitmask: users.permissionsBitmask,
      createdAt: users.createdAt,
      balance: sql<string>`coalesce(${balances.balance}, 0)::text`,
      bonusUsed: sql<boolean>`coalesce(${balances.bonusUsed}, false)`,
    })
    .from(users)
    .leftJoin(balances, eq(balances.userId, users.userId))
    .where(eq(users.userId, userId));
  return row ?? null;
}

export type LinkKind = "validator" | "subnet_owner";

/** Linking a validator or subnet-owner hotkey makes the account free and a developer. */
const LINK_GRANTS = PERMISSIONS.free_account | PERMISSIONS.developer;

export type LinkResult = { ok: true } | { ok: false; reason: "taken"; username: string | null };

/** Records `hotkey` as the user's validator or subnet-owner hotkey (unique across users). */
export async function linkHotkey(db: Database, userId: string, kind: LinkKind, hotkey: string): Promise<LinkResult> {
  const column = kind === "validator" ? users.validatorHotkey : users.subnetOwnerHotkey;
  const [holder] = await db
    .select({ username: users.username })
    .from(users)
    .where(and(eq(column, hotkey), ne(users.userId, userId)));
  if (holder) return { ok: false, reason: "taken", username: holder.username };
  try {
    await db
      .update(users)
      .set({
        ...(kind === "validator" ? { validatorHotkey: hotkey } : { subnetOwnerHotkey: hotkey }),
        permissionsBitmask: sql`${users.permissionsBitmask} | ${LINK_GRANTS}`,
        updatedAt: sql`now()`,
      })
      .where(eq(users.userId, userId));
  } catch (error) {
    if (uniqueViolation(error) !== null) return { ok: false, reason: "taken", username: null };
    throw error;
  }
  return { ok: true };
}

/** Users that registered with `coldkey` (several accounts may share one). */
export async function authUsersByColdkey(db: Database, coldkey: string): Promise<AuthUser[]> {
  return db.select(authUserColumns).from(users).where(eq(users.coldkey, coldkey)).limit(2);
}

/** Replaces the fingerprint; false when another account's fingerprint is the same. */
export async function changeFingerprint(db: Database, userId: string, fingerprint: string): Promise<boolean> {
  try {
    await db
      .update(users)
      .set({ fingerprintHash: fingerprintHash(fingerprint), updatedAt: sql`now()` })
      .where(eq(users.userId, userId));
    return true;
  } catch (error) {
    if (uniqueViolation(error) === "users_fingerprint_hash_key") return false;
    throw redactedDatabaseError(error);
  }
}

export interface DeveloperDepositStatus {
  developerPaymentAddress: string;
  /** USD already deposited to the developer address. */
  depositedUsd: number;
}

export async function developerDepositStatus(db: AnyDatabase, userId: string): Promise<DeveloperDepositStatus | null> {
  const [row] = await db
    .select({
      developerPaymentAddress: users.developerPaymentAddress,
      depositedUsd: sql<string>`coalesce(sum(${payments.usdAmount}), 0)::text`,
    })
    .from(users)
    .leftJoin(payments, and(eq(payments.userId, users.userId), eq(payments.purpose, "developer")))
    .where(eq(users.userId, userId))
    .groupBy(users.userId, users.developerPaymentAddress);
  return row ? { developerPaymentAddress: row.developerPaymentAddress, depositedUsd: Number(row.depositedUsd) } : null;
}
