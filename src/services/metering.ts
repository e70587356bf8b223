/**
 * @module Metering and billing of invocations (architecture §5.3): what one attempt costs,
 * the record the gateway hands to the `Metering` Durable Object when an attempt ends,
 * and the flush that writes a batch of records to Postgres.
 *
 * Exactly once: the flush inserts each record with `ON CONFLICT (invocation_id,
 * started_at) DO NOTHING RETURNING`, and deducts balances and claims bounties only for the
 * rows that insert actually returned, all in one transaction. A batch flushed twice (the
 * Durable Object failed after the commit and before forgetting the batch) inserts nothing
 * the second time and so bills nothing. Failed attempts are recorded with their
 * `error_message` and never billed; free users (`free_account`) are never charged (the
 * guard is in the UPDATE itself).
 */
import { sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { COMPUTE_UNIT_HOURLY_USD } from "./gpus.ts";

/** One attempt of one invocation, as the gateway hands it over (JSON-serialisable). */
export interface InvocationRecord {
  invocationId: string;
  parentInvocationId: string;
  chuteId: string;
  chuteUserId: string;
  functionName: string;
  userId: string;
  imageId: string;
  imageUserId: string;
  instanceId: string;
  minerUid: number;
  minerHotkey: string;
  /** ISO timestamps (the Worker's clock at the request's start and at the last byte or failure). */
  startedAt: string;
  completedAt: string;
  /** null for a success; `RATE_LIMIT`, `BAD_REQUEST`, `KEY_EXCHANGE_REQUIRED` or a description. */
  errorMessage: string | null;
  computeMultiplier: number;
  metrics: Record<string, number> | null;
  /** What the caller is charged (0 for failures, free users and free chutes), USD. */
  costUsd: number;
  /**
   * What the attempt says about the instance (the router's outcome): `failure` counts
   * towards its removal, `success` resets the count, `neutral` (the client left, the
   * caller's own error) neither. Not a column: it drives `instances.consecutive_failures`.
   */
  outcome: "success" | "failure" | "neutral";
}

/** The USD price of `seconds` of a chute: `ceil(s) × multiplier × base rate / 3600 × (1 − discount)`. */
export function invocationCost(seconds: number, computeMultiplier: number, discount: number): number {
  const billed = Math.max(1, Math.ceil(seconds));
  const factor = 1 - Math.min(Math.max(discount, 0), 1);
  return (billed * computeMultiplier * COMPUTE_UNIT_HOURLY_USD * factor) / 3600;
}

/** Rounds to the column's scale (numeric(20,10)) so the row and the deduction agree exactly. */
export const usdString = (value: number): string => value.toFixed(10);

export interface FlushResult {
  /** Records newly written (the rest were already there). */
  inserted: number;
  /** New balances of the users charged in this flush. */
  balances: { userId: string; balance: string }[];
  /** Bounties claimed: chute and the invocation that claimed it. */
  bounties: { chuteId: string; invocationId: string; bounty: number }[];
  /** The newly written attempts' verdicts on their instances, oldest first. */
  instanceOutcomes: InstanceOutcome[];
}

export interface InstanceOutcome {
  instanceId: string;
  outcome: "success" | "failure";
  reason: string;
}

/** Writes a batch of records, billing and claiming bounties for the newly written successes only. */
export async function flushInvocations(db: Database, records: InvocationRecord[]): Promise<FlushResult> {
  if (records.length === 0) return { inserted: 0, balances: [], bounties: [], instanceOutcomes: [] };
  const weeks = [...new Set(records.map((r) => r.startedAt.slice(0, 10)))];
  const payload = JSON.stringify(
    records.map((r) => ({
      invocation_id: r.invocationId,
      parent_invocation_id: r.parentInvocationId,
      chute_id: r.chuteId,
      chute_user_id: r.chuteUserId,
      function_name: r.functionName,
      user_id: r.userId,
      image_id: r.imageId,
      image_user_id: r.imageUserId,
      instance_id: r.instanceId,
      miner_uid: r.minerUid,
      miner_hotkey: r.minerHotkey,
      started_at: r.startedAt,
      completed_at: r.completedAt,
      error_message: r.errorMessage,
      compute_multiplier: r.computeMultiplier,
      metrics: r.metrics,
      cost_usd: r.errorMessage === null ? usdString(r.costUsd) : "0",
    })),
  );
  return db.transaction(async (tx) => {
    for (const day of weeks)
      await tx.execute(sql`select ensure_invocation_partition(${`${day}T00:00:00Z`}::timestamptz)`);
    const inserted = (
      await tx.execute<{ invocation_id: string; started_at: string; chute_id: string; ok: boolean }>(sql`
        insert into invocations (invocation_id, parent_invocation_id, chute_id, chute_user_id, function_name, user_id,
          image_id, image_user_id, instance_id, miner_uid, miner_hotkey, started_at, completed_at, error_message,
          compute_multiplier, bounty, metrics, cost_usd)
        select invocation_id, parent_invocation_id, chute_id, chute_user_id, function_name, user_id, image_id,
          image_user_id, instance_id, miner_uid, miner_hotkey, started_at, completed_at, error_message,
          compute_multiplier, 0, metrics, cost_usd
        from jsonb_to_recordset(${payload}::jsonb) as r(invocation_id text, parent_invocation_id text, chute_id text,
          chute_user_id text, function_name text, user_id text, image_id text, image_user_id text, instance_id text,
          miner_uid int, miner_hotkey text, started_at timestamptz, completed_at timestamptz, error_message text,
          compute_multiplier float8, metrics jsonb, cost_usd numeric)
        on conflict (invocation_id, started_at) do nothing
        returning invocation_id, started_at::text as started_at, chute_id, (error_message is null) as ok`)
    ).rows;
    const fresh = new Set(inserted.map((row) => row.invocation_id));
    const successes = records.filter((r) => fresh.has(r.invocationId) && r.errorMessage === null);

    // Balances: one atomic decrement per user of the exact (numeric) sum of their newly
    // written costs, so the balance change always equals the sum of the rows.
    let balances: FlushResult["balances"] = [];
    const charged = successes.filter((r) => r.costUsd > 0);
    if (charged.length > 0) {
      const costs = JSON.stringify(charged.map((r) => ({ user_id: r.userId, cost_usd: usdString(r.costUsd) })));
      balances = (
        await tx.execute<{ user_id: string; balance: string }>(sql`
          update balances b set balance = b.balance - c.total, updated_at = now()
          from (select user_id, sum(cost_usd) as total
                from jsonb_to_recordset(${costs}::jsonb) as r(user_id text, cost_usd numeric) group by user_id) c,
               users u
          where b.user_id = c.user_id and u.user_id = c.user_id and (u.permissions_bitmask & 16) = 0
          returning b.user_id, b.balance::text as balance`)
      ).rows.map((row) => ({ userId: row.user_id, balance: row.balance }));
    }

    // Bounties: the first newly written success of a chute claims its bounty (delete-and-return).
    const firsts = new Map<string, InvocationRecord>();
    for (const r of [...successes].sort((a, b) => a.startedAt.localeCompare(b.startedAt))) {
      if (!firsts.has(r.chuteId)) firsts.set(r.chuteId, r);
    }
    const bounties: FlushResult["bounties"] = [];
    if (firsts.size > 0) {
      const claimed = (
        await tx.execute<{ chute_id: string; bounty: number }>(sql`
          delete from bounties where chute_id in (${sql.join(
            [...firsts.keys()].map((id) => sql`${id}`),
            sql`, `,
          )}) returning chute_id, bounty`)
      ).rows;
      for (const claim of claimed) {
        const winner = firsts.get(claim.chute_id);
        if (!winner) continue;
        await tx.execute(sql`update invocations set bounty = ${claim.bounty}
          where invocation_id = ${winner.invocationId} and started_at = ${winner.startedAt}::timestamptz`);
        bounties.push({ chuteId: claim.chute_id, invocationId: winner.invocationId, bounty: claim.bounty });
      }
      const counts = new Map<string, number>();
      for (const r of successes) counts.set(r.chuteId, (counts.get(r.chuteId) ?? 0) + 1);
      for (const [chuteId, n] of counts) {
        await tx.execute(sql`update chutes set invocation_count = invocation_count + ${n} where chute_id = ${chuteId}`);
      }
    }
    // Only newly written attempts count, so a batch flushed twice counts no failure twice.
    const instanceOutcomes: InstanceOutcome[] = records
      .filter((r) => fresh.has(r.invocationId) && r.outcome !== "neutral")
      .sort((a, b) => a.completedAt.localeCompare(b.completedAt))
      .map((r) => ({
        instanceId: r.instanceId,
        outcome: r.outcome === "success" ? "success" : "failure",
        reason: `invocation ${r.invocationId}: ${r.errorMessage ?? "ok"}`,
      }));
    return { inserted: inserted.length, balances, bounties, instanceOutcomes };
  });
}
