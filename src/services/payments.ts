/**
 * @module The payment watcher (upstream-flows §4.3) and the payment history users read.
 *
 * Every minute the cron walks finalised blocks from the saved cursor
 * (`payment_monitor_state`), in order, at most `PAYMENT_BLOCKS_PER_RUN` per run. For each
 * `Balances.Transfer` to a user's payment address it records a `credits` payment and adds
 * `rao × price / 1e9` USD to the balance; to a developer-deposit address, a `developer`
 * payment, and the `developer` permission once the user's developer deposits reach
 * `DEVELOPER_DEPOSIT_USD`. A block is all or nothing: its payments, credits, grants and the
 * cursor move commit in one transaction, under a row lock on the cursor that also makes
 * a second watcher (an overlapping cron run) stop instead of repeating the block.
 *
 * Idempotent: a payment is unique on (block, extrinsic, event), so a block seen twice
 * credits once; two equal transfers in one block are two payments (upstream's id merged
 * them). Never ahead of finality: a block the chain does not report as finalised stops
 * the walk. Never at a stale price: a block with payments waits until a price no older
 * than `FMV_MAX_AGE_SECONDS` is available.
 */
import { and, count, desc, eq, inArray, or, sql } from "drizzle-orm";
import type { BlockTransfers, Chain, Transfer } from "../chain/types.ts";
import type { Database } from "../db/client.ts";
import { balances, paymentMonitorState, payments, users } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";
import { uuid5 } from "../lib/ids.ts";
import { PERMISSIONS } from "../lib/permissions.ts";
import type { TaoPrice } from "./fmv.ts";
import { developerDepositStatus } from "./users.ts";

export interface PaymentConfig {
  DEVELOPER_DEPOSIT_USD: number;
  FIRST_PAYMENT_BONUS_USD: number;
  FIRST_PAYMENT_BONUS_THRESHOLD_USD: number;
  PAYMENT_BLOCKS_PER_RUN: number;
}

export interface PaymentDeps {
  db: Database;
  chain: Pick<Chain, "getFinalizedHead" | "getTransfers">;
  /** A price no older than the staleness limit, or null (src/services/fmv.ts). */
  price(): Promise<TaoPrice | null>;
  config: PaymentConfig;
  /** The cursor row; one per chain the deployment watches. */
  monitorId: string;
  signal?: AbortSignal;
}

export interface PaymentRun {
  /** Last block processed before and after this run. */
  from: number;
  to: number;
  finalized: number;
  payments: number;
  /** Why the walk stopped before the finalised head, if it did for another reason than the per-run cap. */
  waiting: string | null;
}

interface Match {
  transfer: Transfer;
  userId: string;
  purpose: "credits" | "developer";
}

/** The transfers of a block that pay a user, and for what. */
async function matchTransfers(db: AnyDatabase, transfers: Transfer[]): Promise<Match[]> {
  if (transfers.length === 0) return [];
  const to = [...new Set(transfers.map((t) => t.to))];
  const owners = await db
    .select({
      userId: users.userId,
      paymentAddress: users.paymentAddress,
      developerPaymentAddress: users.developerPaymentAddress,
    })
    .from(users)
    .where(or(inArray(users.paymentAddress, to), inArray(users.developerPaymentAddress, to)));
  const matches: Match[] = [];
  for (const transfer of transfers) {
    for (const owner of owners) {
      if (transfer.to === owner.paymentAddress) matches.push({ transfer, userId: owner.userId, purpose: "credits" });
      else if (transfer.to === owner.developerPaymentAddress) {
        matches.push({ transfer, userId: owner.userId, purpose: "developer" });
      }
    }
  }
  return matches;
}

type Tx = Parameters<Parameters<Database["transaction"]>[0]>[0];

/** Records one payment, once; applies its credit, bonus or developer grant. Returns whether it was new. */
async function recordPayment(tx: Tx, block: BlockTransfers, match: Match, price: TaoPrice, config: PaymentConfig) {
  const { transfer, userId, purpose } = match;
  const extrinsicIndex = transfer.extrinsicIndex ?? -1;
  const [inserted] = await tx
    .insert(payments)
    .values({
      paymentId: await uuid5(`${block.number}:${extrinsicIndex}:${transfer.eventIndex}`),
      userId,
      block: block.number,
      blockHash: block.hash,
      extrinsicIndex,
      eventIndex: transfer.eventIndex,
      fromAddress: transfer.from,
      toAddress: transfer.to,
      raoAmount: transfer.amountRao.toString(),
      fmv: price.usd,
      // Exact decimal arithmetic in Postgres; the column rounds to 10 places.
      usdAmount: sql`${transfer.amountRao.toString()}::numeric * ${String(price.usd)}::numeric / 1000000000`,
      purpose,
    })
    .onConflictDoNothing()
    .returning({ usdAmount: payments.usdAmount });
  if (!inserted) return false;
  if (purpose === "credits") {
    await tx
      .insert(balances)
      .values({ userId, balance: inserted.usdAmount })
      .onConflictDoUpdate({
        target: balances.userId,
        set: { balance: sql`${balances.balance} + ${inserted.usdAmount}::numeric`, updatedAt: sql`now()` },
      });
    if (config.FIRST_PAYMENT_BONUS_USD > 0) {
      await tx
        .update(balances)
        .set({
          balance: sql`${balances.balance} + ${String(config.FIRST_PAYMENT_BONUS_USD)}::numeric`,
          bonusUsed: true,
          updatedAt: sql`now()`,
        })
        .where(
          and(
            eq(balances.userId, userId),
            eq(balances.bonusUsed, false),
            sql`(select coalesce(sum(p.usd_amount), 0) from payments p
              where p.user_id = ${userId} and p.purpose = 'credits') >= ${String(config.FIRST_PAYMENT_BONUS_THRESHOLD_USD)}::numeric`,
          ),
        );
    }
  } else {
    const status = await developerDepositStatus(tx, userId);
    if (status && status.depositedUsd >= config.DEVELOPER_DEPOSIT_USD) {
      await tx
        .update(users)
        .set({ permissionsBitmask: sql`${users.permissionsBitmask} | ${PERMISSIONS.developer}`, updatedAt: sql`now()` })
        .where(eq(users.userId, userId));
    }
  }
  return true;
}

/**
 * Processes block `block` if the cursor still stands just before it; false when another
 * watcher moved it first (nothing is written then).
 */
async function processBlock(
  deps: PaymentDeps,
  block: BlockTransfers,
  matches: Match[],
  price: TaoPrice | null,
): Promise<{ moved: boolean; payments: number }> {
  return deps.db.transaction(async (tx) => {
    const [cursor] = await tx
      .select()
      .from(paymentMonitorState)
      .where(eq(paymentMonitorState.monitorId, deps.monitorId))
      .for("update");
    if (cursor?.blockNumber !== block.number - 1) return { moved: false, payments: 0 };
    let recorded = 0;
    for (const match of matches) {
      if (price && (await recordPayment(tx, block, match, price, deps.config))) recorded++;
    }
    await tx
      .update(paymentMonitorState)
      .set({ blockNumber: block.number, blockHash: block.hash, updatedAt: sql`now()` })
      .where(eq(paymentMonitorState.monitorId, deps.monitorId));
    return { moved: true, payments: recorded };
  });
}

/** The cursor: the last block processed. A new watcher starts just before the finalised head. */
async function cursorOf(deps: PaymentDeps, finalized: { number: number; hash: string }): Promise<number> {
  await deps.db
    .insert(paymentMonitorState)
    .values({ monitorId: deps.monitorId, blockNumber: finalized.number - 1, blockHash: "" })
    .onConflictDoNothing();
  const [row] = await deps.db
    .select({ blockNumber: paymentMonitorState.blockNumber })
    .from(paymentMonitorState)
    .where(eq(paymentMonitorState.monitorId, deps.monitorId));
  if (!row) throw new Error(`payment cursor ${deps.monitorId} is missing`);
  return row.blockNumber;
}

/** One watcher run: as many finalised blocks as allowed, in order, from the cursor. */
export async function processPayments(deps: PaymentDeps): Promise<PaymentRun> {
  const finalized = await deps.chain.getFinalizedHead();
  const from = await cursorOf(deps, finalized);
  const last = Math.min(finalized.number, from + deps.config.PAYMENT_BLOCKS_PER_RUN);
  let at = from;
  let recorded = 0;
  let waiting: string | null = null;
  let price: TaoPrice | null | undefined;
  while (at < last) {
    deps.signal?.throwIfAborted();
    const block = await deps.chain.getTransfers(at + 1);
    if (!block) {
      waiting = `block ${at + 1} is not finalised yet`;
      break;
    }
    const matches = await matchTransfers(deps.db, block.transfers);
    if (matches.length > 0) {
      price ??= await deps.price();
      if (!price) {
        waiting = `block ${block.number} pays ${matches.length} user(s) but no TAO price within the staleness limit is available`;
        break;
      }
    }
    const result = await processBlock(deps, block, matches, price ?? null);
    if (!result.moved) {
      waiting = "another watcher moved the cursor";
      break;
    }
    recorded += result.payments;
    at = block.number;
  }
  return { from, to: at, finalized: finalized.number, payments: recorded, waiting };
}

// ---------------------------------------------------------------------------------------
// Payment history (`GET /payments`)
// ---------------------------------------------------------------------------------------

export type PaymentRow = typeof payments.$inferSelect;

export async function userPayments(
  db: AnyDatabase,
  userId: string,
  page: { offset: number; limit: number },
): Promise<{ total: number; items: PaymentRow[] }> {
  const [total] = await db.select({ n: count() }).from(payments).where(eq(payments.userId, userId));
  const items = await db
    .select()
    .from(payments)
    .where(eq(payments.userId, userId))
    .orderBy(desc(payments.block), desc(payments.eventIndex))
    .offset(page.offset)
    .limit(page.limit);
  return { total: total?.n ?? 0, items };
}
