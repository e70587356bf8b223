/**
 * @module Image builders: registration of their Ed25519 keys, (dis)abling them, and the
 * authentication of their signed requests (the builders' scheme of the shared service
 * credential: label `chutes-edge-builder-v1`, `X-Builder-*` headers, replay cache
 * `builder:nonce:{builder_id}:{nonce}`). Registration also runs in the operator script
 * and the dev launcher, hence no Worker types here.
 */
import { and, eq, gt } from "drizzle-orm";
import { builders } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";
import { ApiError } from "../lib/errors.ts";
import { BUILDER_SCHEME } from "../schemas/builders.ts";
import { authenticateService, type NonceStore, type ServiceRequest } from "./service-auth.ts";

export type Builder = typeof builders.$inferSelect;

export interface BuilderRegistration {
  name: string;
  publicKey: string;
  /** Replace the key of a builder with this name instead of refusing (rotating keys). */
  replace?: boolean;
}

/** Registers a builder's public key; a name or key already in use is a conflict unless `replace`. */
export async function registerBuilder(db: AnyDatabase, input: BuilderRegistration): Promise<Builder> {
  const insert = db
    .insert(builders)
    .values({ builderId: crypto.randomUUID(), name: input.name, publicKey: input.publicKey });
  const rows = input.replace
    ? await insert
        .onConflictDoUpdate({ target: builders.name, set: { publicKey: input.publicKey, disabled: false } })
        .returning()
    : await insert.onConflictDoNothing().returning();
  const row = rows[0];
  if (!row) throw new ApiError("conflict", "A builder with this name or public key is already registered.");
  return row;
}

export async function setBuilderDisabled(db: AnyDatabase, builderId: string, disabled: boolean): Promise<Builder> {
  const [row] = await db.update(builders).set({ disabled }).where(eq(builders.builderId, builderId)).returning();
  if (!row) throw new ApiError("not_found", `No builder ${builderId}.`);
  return row;
}

/** Whether an enabled builder made a request since `since` (someone is there to build). */
export async function builderOnline(db: AnyDatabase, since: Date): Promise<boolean> {
  const rows = await db
    .select({ id: builders.builderId })
    .from(builders)
    .where(and(eq(builders.disabled, false), gt(builders.lastSeenAt, since)))
    .limit(1);
  return rows.length > 0;
}

/** The builder behind a signed request, or 401/403. */
export function authenticateBuilder(
  deps: { db: AnyDatabase; redis: NonceStore; now(): Date },
  request: ServiceRequest,
): Promise<Builder> {
  return authenticateService(
    deps,
    {
      scheme: BUILDER_SCHEME,
      noun: "builder",
      noncePrefix: "builder",
      find: async (id) => (await deps.db.select().from(builders).where(eq(builders.builderId, id)))[0] ?? null,
      touch: async (id) => {
        await deps.db.update(builders).set({ lastSeenAt: deps.now() }).where(eq(builders.builderId, id));
      },
    },
    request,
  );
}
