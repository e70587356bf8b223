/**
 * The validator half of the end-to-end walk-through, against a real `npm start`:
 * invocations of one hour → the minute-1 export → CSV, manifest and the auditors'
 * verifier agree (and prove one invocation) → the minute-5 scoring run cites that export
 * and records weights on the dev chain → a simulated payment raises a user's balance
 * exactly once.
 *
 * An hour is exported only once it has ended, and exports are immutable, so the rows of
 * the exported hour cannot come from live calls in a test: `seedInvocations` writes them,
 * in an hour of the past, in the shape the gateway's metering flush writes (one row per
 * attempt; test/e2e/gateway.test.ts checks real calls produce those rows, billed once).
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { triggerCron } from "../../infra/dev/cron.ts";
import { DEV_VALIDATOR_SEED } from "../../infra/dev/services.ts";
import { hotkeyFromSeed } from "../../src/chain/keys.ts";
import { cliHeaders, randomHotkey } from "../support/chutes-cli.ts";
import { hostRequest, registerOverApi } from "../support/http.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const base = inject("platformUrl");
const port = Number(new URL(base).port);
const devChain = inject("devChainUrl");
const API = "api.localhost";
const HOUR = 3_600_000;
const VALIDATOR = hotkeyFromSeed(DEV_VALIDATOR_SEED);
/** The dev metagraph's miners (infra/dev/metagraph.json): uid 1 and uid 2 of netuid 64. */
const MINERS = ["5Cfv7fcjhtGaQEjdKEHfxgRpS97TLUqmRjeXwTtYUk8S7eui", "5G1ZCR6235ME8VfZ2CXcNaJ3npFL45krUKdatXVMSgBPSaLF"];
// An hour of its own in the past (the platform's database is fresh for every run).
const hour = new Date(Date.UTC(2025, 2, 10, 14) + Math.floor(Math.random() * 1000) * HOUR);
const hourEnd = new Date(hour.getTime() + HOUR);

async function withDatabase<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: inject("platformDatabaseUrl") });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** `count` successful attempts spread over the past hour, as the gateway's metering flush records them. */
async function seedInvocations(count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, () => crypto.randomUUID());
  await withDatabase(async (client) => {
    await client.query("select ensure_invocation_partition($1::timestamptz)", [hour.toISOString()]);
    for (const [i, id] of ids.entries()) {
      const started = new Date(hour.getTime() + i * 60_000 + 123);
      await client.query(
        `insert into invocations (invocation_id, parent_invocation_id, chute_id, chute_user_id, function_name, user_id,
           image_id, image_user_id, instance_id, miner_uid, miner_hotkey, started_at, completed_at, error_message,
           compute_multiplier, bounty, metrics)
         values ($1, $2, $3, 'dev', 'chat', 'caller', 'image', 'dev', $4, $5, $6, $7, $8, null, 0.087671, $9, $10)`,
        [
          id,
          crypto.randomUUID(),
          `chute-${i % 3}`,
          `instance-${i % 2}`,
          1 + (i % 2),
          MINERS[i % 2],
          started,
          new Date(started.getTime() + 1500 + i * 10),
          i === 0 ? 100 : 0,
          JSON.stringify({ tokens: 50 + i, tps: 40 }),
        ],
      );
    }
  });
  return ids;
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function runVerifier(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, "infra/ops/verify-export-cli.ts"), ...args], { cwd: ROOT });
    let out = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.on("close", (code) => resolve({ code, out }));
  });
}

const pad = (n: number) => String(n).padStart(2, "0");
const exportPath = (suffix: string) =>
  `/invocations/exports/${hourEnd.getUTCFullYear()}/${pad(hourEnd.getUTCMonth() + 1)}/${pad(hourEnd.getUTCDate())}/${pad(hourEnd.getUTCHours())}.${suffix}`;

describe("walk-through: invocations → export → verifier → scores → payment", () => {
  let ids: string[] = [];
  let manifest: { sha256: string; row_count: number; validator: string } | undefined;

  beforeAll(async () => {
    ids = await seedInvocations(12);
  });

  it("exports the hour at minute 1, and the CSV, manifest and verifier agree", async () => {
    await triggerCron(port, "1 * * * *", new Date(hourEnd.getTime() + 60_000));
    const csv = await eventually("the export", async () => {
      const res = await hostRequest(base, API, exportPath("csv"));
      return res.status === 200 ? res : undefined;
    });
    expect(csv.headers["content-type"]).toBe("text/csv; charset=utf-8");
    const lines = csv.text.split("\r\n");
    expect(lines).toHaveLength(ids.length + 2);
    expect(lines.slice(1, -1).map((line) => line.split(",")[1])).toEqual(ids);

    const manifestRes = await hostRequest(base, API, exportPath("manifest.json"));
    manifest = manifestRes.json();
    expect(manifest).toMatchObject({ validator: VALIDATOR, row_count: ids.length });

    const target = ids[7] ?? "";
    const verified = await runVerifier([
      `${base}${exportPath("csv")}`,
      "--validator",
      VALIDATOR,
      "--invocation",
      target,
    ]);
    expect(verified.out).toContain("inclusion proof verified");
    expect(verified.out).toContain(`sha256      ${manifest?.sha256}`);
    expect(verified.code).toBe(0);
  });

  it("scores the 7 days ending with that hour at minute 5, citing the export, and records weights", async () => {
    // The dev chain's weights rate limit is 5 blocks; a fresh chain may not have that many yet.
    for (let i = 0; i < 6; i++) {
      await fetch(`${devChain}/transfers`, {
        method: "POST",
        body: JSON.stringify([{ from: randomHotkey().ss58, to: randomHotkey().ss58, amount_rao: "1" }]),
      });
    }
    await triggerCron(port, "5 * * * *", new Date(hourEnd.getTime() + 5 * 60_000));
    const scores = await eventually("the scoring run", async () => {
      const res = await hostRequest(base, API, "/miner/scores");
      if (res.status !== 200) return undefined;
      const body = res.json<{
        window_end: string;
        outcome: string;
        export_hashes: { sha256: string }[];
        items: { miner_hotkey: string; uid: number; weight: number }[];
      }>();
      return body.window_end === hourEnd.toISOString() ? body : undefined;
    });
    expect(scores.outcome).toBe("recorded");
    expect(scores.export_hashes.map((e) => e.sha256)).toContain(manifest?.sha256);
    expect(scores.items.map((m) => m.miner_hotkey).sort()).toEqual([...MINERS].sort());
    expect(Math.max(...scores.items.map((m) => m.weight))).toBe(65535);
    const weights = (await (await fetch(`${devChain}/weights?netuid=64&hotkey=${VALIDATOR}`)).json()) as {
      uids: number[];
      version_key: number;
    }[];
    expect(weights.at(-1)).toMatchObject({ uids: [1, 2], version_key: 69420 });
  });

  it("credits a simulated payment to the user's balance exactly once", async () => {
    const key = randomHotkey();
    const registered = await registerOverApi(base, key, `pay_${Date.now().toString(36).slice(-8)}`);
    expect(registered.status, registered.text).toBe(200);
    const { payment_address: address } = registered.json<{ payment_address: string }>();
    const balance = async () => {
      const me = await hostRequest(base, API, "/users/me", { headers: await cliHeaders(key, { purpose: "me" }) });
      return me.json<{ balance: number }>().balance;
    };

    const paid = await fetch(`${devChain}/transfers`, {
      method: "POST",
      body: JSON.stringify([{ from: randomHotkey().ss58, to: address, amount_rao: "1500000000" }]),
    });
    expect(paid.status).toBe(200);
    // 1.5 TAO at the dev price feed's $400.
    await eventually("the credit", async () => {
      await triggerCron(port, "* * * * *");
      return (await balance()) === 600 ? true : undefined;
    });
    await triggerCron(port, "* * * * *");
    await triggerCron(port, "* * * * *");
    expect(await balance()).toBe(600);
    const payments = await hostRequest(base, API, "/payments", {
      headers: await cliHeaders(key, { purpose: "payments" }),
    });
    expect(payments.json()).toMatchObject({
      total: 1,
      items: [{ to_address: address, usd_amount: 600, purpose: "credits" }],
    });
  });
});
