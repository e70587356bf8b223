/**
 * @module What gateway tests and the gateway benchmark need around a running platform:
 * a caller registered through the API (with an API key, a balance and permissions), a
 * chute written straight into Postgres (as a deploy would leave it), and simulated
 * instances (./sim-instance.ts) seeded as active+verified instance rows with their
 * session key sealed as the miner plane stores it, so the router's cold load finds them.
 */
import { readFileSync } from "node:fs";
import { eq, sql } from "drizzle-orm";
import { withDatabase } from "../../infra/dev/database.ts";
import { balances, chutes, images, instances, metagraphNodes, users } from "../../src/db/schema.ts";
import { type Permission, permissionBits } from "../../src/lib/permissions.ts";
import type { Cord } from "../../src/schemas/cords.ts";
import { sealSessionKey } from "../../src/services/instance-keys.ts";
import { vllmCords } from "../../src/services/templates.ts";
import { cliHeaders, randomHotkey, type TestHotkey } from "./chutes-cli.ts";
import { hostRequest, registerOverApi } from "./http.ts";
import { type SimInstance, startSimInstance } from "./sim-instance.ts";

export const API = "api.localhost";

/** The development WALLET_KEY the local platform runs with (wrangler.toml's top-level [vars]). */
const DEV_WALLET_KEY =
  /^WALLET_KEY = "([0-9a-f]{64})"$/m.exec(readFileSync(new URL("../../wrangler.toml", import.meta.url), "utf8"))?.[1] ??
  "";

export interface Caller {
  userId: string;
  username: string;
  hotkey: TestHotkey;
  apiKey: string;
}

const short = () => crypto.randomUUID().replaceAll("-", "").slice(0, 10);

/** Registers a user through the API and mints an admin API key; sets balance and permissions in Postgres. */
export async function registerCaller(
  base: string,
  databaseUrl: string,
  options: { balanceUsd?: number; permissions?: Permission[] } = {},
): Promise<Caller> {
  const hotkey = randomHotkey();
  const username = `gw_${short()}`;
  const res = await registerOverApi(base, hotkey, username);
  if (res.status !== 200) throw new Error(`register: ${res.status} ${res.text}`);
  const userId = String(res.json().user_id);
  const keyBody = JSON.stringify({ name: `k_${short()}`, admin: true });
  const key = await hostRequest(base, API, "/api_keys/", {
    method: "POST",
    headers: await cliHeaders(hotkey, { body: keyBody, userId }),
    body: keyBody,
  });
  if (key.status !== 200) throw new Error(`api key: ${key.status} ${key.text}`);
  await withDatabase(databaseUrl, async (db) => {
    await db
      .update(balances)
      .set({ balance: String(options.balanceUsd ?? 100) })
      .where(eq(balances.userId, userId));
    if (options.permissions) {
      await db
        .update(users)
        .set({ permissionsBitmask: permissionBits(options.permissions) })
        .where(eq(users.userId, userId));
    }
  });
  return { userId, username, hotkey, apiKey: String(key.json().secret_key) };
}

/** The test cords of ./sim-instance.ts, as a chute declares them. */
export function simCords(): Cord[] {
  const cord = (fn: string, stream: boolean): Cord => ({
    method: "POST",
    path: `/${fn}`,
    function: fn,
    stream,
    passthrough: true,
    public_api_path: `/${fn}`,
    public_api_method: "POST",
    input_schema: {},
    output_schema: {},
    minimal_input_schema: {},
    output_content_type: stream ? "text/event-stream" : "application/json",
  });
  return [cord("echo", false), cord("slow", false), cord("error", false), cord("stream", true), cord("die", true)];
}

export interface SeededChute {
  chuteId: string;
  slug: string;
  name: string;
  computeMultiplier: number;
}

/** A chute row (and its image) owned by `owner`, as a deploy leaves it. */
export async function seedChute(
  databaseUrl: string,
  owner: Caller,
  options: { template?: "vllm"; name?: string; public?: boolean; discount?: number; cords?: Cord[] } = {},
): Promise<SeededChute> {
  const name = options.name ?? `chute-${short()}`;
  const chuteId = crypto.randomUUID();
  const imageId = crypto.randomUUID();
  const slug = `${owner.username.replaceAll("_", "-")}-${short()}`.toLowerCase();
  const computeMultiplier = 1;
  await withDatabase(databaseUrl, async (db) => {
    await db
      .insert(images)
      .values({ imageId, userId: owner.userId, name: `img-${short()}`, tag: "1", status: "built" });
    await db.insert(chutes).values({
      chuteId,
      userId: owner.userId,
      name,
      slug,
      imageId,
      public: options.public ?? true,
      standardTemplate: options.template ?? null,
      cords: options.cords ?? (options.template === "vllm" ? vllmCords() : simCords()),
      nodeSelector: {
        gpu_count: 1,
        min_vram_gb_per_gpu: 24,
        include: null,
        exclude: null,
        supported_gpus: ["a4000"],
        compute_multiplier: computeMultiplier,
      },
      version: crypto.randomUUID(),
      discount: options.discount ?? 0,
    });
  });
  return { chuteId, slug, name, computeMultiplier };
}

/** Starts a sim instance holding a fresh session key and seeds it as an active+verified instance of the chute. */
export async function seedInstance(
  databaseUrl: string,
  chuteId: string,
  options: { model?: string } = {},
): Promise<SimInstance> {
  const instanceId = crypto.randomUUID();
  const sessionKey = crypto.getRandomValues(new Uint8Array(32));
  const sim = await startSimInstance({ instanceId, sessionKey, model: options.model });
  const miner = randomHotkey();
  await withDatabase(databaseUrl, async (db) => {
    await db.insert(metagraphNodes).values({
      hotkey: miner.ss58,
      netuid: 64,
      nodeId: -1000 - Math.floor(Math.random() * 1e6),
      coldkey: miner.ss58,
      checksum: "gateway",
    });
    await db.insert(instances).values({
      instanceId,
      chuteId,
      version: "1",
      minerHotkey: miner.ss58,
      minerUid: 7,
      minerColdkey: miner.ss58,
      host: sim.host,
      port: sim.port,
      active: true,
      verified: true,
      sessionKey: await sealSessionKey(sessionKey, DEV_WALLET_KEY, instanceId),
    });
  });
  return sim;
}

export interface InvocationRow {
  invocation_id: string;
  parent_invocation_id: string;
  instance_id: string;
  error_message: string | null;
  cost_usd: string;
  metrics: Record<string, number> | null;
  bounty: number;
  miner_hotkey: string;
}

/** The invocation rows of a user (all attempts). */
export function invocationRows(databaseUrl: string, userId: string): Promise<InvocationRow[]> {
  return withDatabase(databaseUrl, async (db) => {
    const result = await db.execute(sql`select invocation_id, parent_invocation_id, instance_id, error_message,
      cost_usd::text as cost_usd, metrics, bounty, miner_hotkey from invocations where user_id = ${userId}
      order by started_at`);
    return (result as unknown as { rows: InvocationRow[] }).rows;
  });
}

export function balanceOf(databaseUrl: string, userId: string): Promise<string> {
  return withDatabase(databaseUrl, async (db) => {
    const [row] = await db.select({ balance: balances.balance }).from(balances).where(eq(balances.userId, userId));
    return row?.balance ?? "0";
  });
}

/** Polls until `check` passes or `timeoutMs` passes (then its last failure is thrown). */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
