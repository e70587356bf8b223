/**
 * Money in, inside workerd on real Postgres and Redis: the TAO price from the dev price
 * feed's Kraken and CoinGecko stand-ins (fallback, cache, staleness limit); the payment
 * watcher over the dev chain (file) and the fake subtensor node (rpc): credits exactly
 * once, never from a block that is not final, never at a stale price; developer deposits
 * and the first-payment bonus; the routes. Prices use their own tickers and watchers their
 * own cursors, so tests never share either.
 */
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { and, eq, sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { FileChain } from "../../src/chain/file.ts";
import type { BlockRef, BlockTransfers } from "../../src/chain/types.ts";
import { openDatabase } from "../../src/db/client.ts";
import { balances, fmvHistory, paymentMonitorState, payments, users } from "../../src/db/schema.ts";
import { configFor } from "../../src/env.ts";
import worker from "../../src/index.ts";
import { openRedis } from "../../src/lib/redis.ts";
import { currentPrice, type TaoPrice } from "../../src/services/fmv.ts";
import { type PaymentDeps, processPayments } from "../../src/services/payments.ts";
import { developerDepositStatus } from "../../src/services/users.ts";
import { FIXTURE_HEAD, PAYEES } from "../support/chain-fixture.ts";
import { API_HOST, registerUser, sendSigned, type TestUser } from "./accounts.ts";
import { openFakeSubtensor, randomHotkey } from "./chain-helpers.ts";
import { callHost, expectError } from "./helpers.ts";
import { runCommonRouteTests } from "./route-security.ts";

const config = configFor(env);
const handle = openDatabase(config);
const db = handle.db;
afterAll(() => handle.close());

const feed = new URL(config.FMV_PRIMARY_URL).origin;
const KRAKEN = "/kraken/0/public/Ticker?pair=TAOUSD";
const COINGECKO = "/coingecko/api/v3/simple/price?ids=bittensor&vs_currencies=usd";
const TAO = 1_000_000_000n;

const fixedPrice = (usd: number | null) => async (): Promise<TaoPrice | null> =>
  usd === null ? null : { usd, source: "test", fetchedAt: new Date() };

const devChain = () => new FileChain({ url: config.CHAIN_FILE_URL ?? "" });

function watcher(overrides: Partial<PaymentDeps> = {}): PaymentDeps {
  return {
    db,
    chain: devChain(),
    price: fixedPrice(400.25),
    config: { ...config, DEVELOPER_DEPOSIT_USD: 100 },
    monitorId: `test:${crypto.randomUUID()}`,
    ...overrides,
  };
}

/**
 * A watcher of its own whose cursor stands at the dev chain's head: the blocks before it
 * carry other tests' payments, which a watcher without a price would wait at.
 */
async function freshWatcher(overrides: Partial<PaymentDeps> = {}): Promise<PaymentDeps> {
  const deps = watcher(overrides);
  const head = await devChain().getFinalizedHead();
  await db
    .insert(paymentMonitorState)
    .values({ monitorId: deps.monitorId, blockNumber: head.number, blockHash: head.hash });
  return deps;
}

async function transfer(list: { to: string; amountRao: bigint; from?: string }[]): Promise<BlockRef> {
  const res = await fetch(`${config.CHAIN_FILE_URL}/transfers`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(
      list.map((t) => ({ from: t.from ?? randomHotkey(), to: t.to, amount_rao: t.amountRao.toString() })),
    ),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as BlockRef;
}

async function balanceOf(userId: string): Promise<string> {
  const [row] = await db.select({ balance: balances.balance }).from(balances).where(eq(balances.userId, userId));
  return row?.balance ?? "missing";
}

const paymentsOf = (userId: string) => db.select().from(payments).where(eq(payments.userId, userId));

async function permissions(userId: string): Promise<number> {
  const [row] = await db.select({ bits: users.permissionsBitmask }).from(users).where(eq(users.userId, userId));
  return row?.bits ?? -1;
}

describe("TAO price", () => {
  const redis = openRedis(config);
  const fmv = (primary: string, fallback: string, now = () => new Date()) => ({
    db,
    redis,
    config: { ...config, FMV_PRIMARY_URL: `${feed}${primary}`, FMV_FALLBACK_URL: `${feed}${fallback}` },
    now,
  });
  const hits = async (token: string) =>
    ((await (await fetch(`${feed}/hits/${token}`)).json()) as { hits: number }).hits;

  it("reads the primary source, records and caches it, and falls back when it is down", async () => {
    const ticker = `t-${crypto.randomUUID()}`;
    const token = crypto.randomUUID();
    const deps = fmv(`${KRAKEN}&usd=412.5&hits=${token}`, `${COINGECKO}&usd=1`);
    expect(await currentPrice(deps, ticker)).toMatchObject({ usd: 412.5, source: "kraken" });
    expect(await currentPrice(deps, ticker)).toMatchObject({ usd: 412.5, source: "kraken" });
    expect(await hits(token)).toBe(1);
    expect(await redis.get(`fmv:${ticker}`)).toMatchObject({ usd: 412.5, source: "kraken" });
    expect(await db.select().from(fmvHistory).where(eq(fmvHistory.ticker, ticker))).toMatchObject([
      { price: 412.5, source: "kraken" },
    ]);
    const other = `t-${crypto.randomUUID()}`;
    const down = fmv(`${KRAKEN}&status=503`, `${COINGECKO}&usd=398.75`);
    expect(await currentPrice(down, other)).toMatchObject({ usd: 398.75, source: "coingecko" });
  });

  it("never returns a price older than the staleness limit", async () => {
    const ticker = `t-${crypto.randomUUID()}`;
    const t0 = Date.now();
    const at = (seconds: number) => () => new Date(t0 + seconds * 1000);
    const broken = [`${KRAKEN}&status=502`, `${COINGECKO}&status=500`] as const;
    expect(await currentPrice(fmv(...broken, at(0)), ticker)).toBeNull();
    expect(await currentPrice(fmv(`${KRAKEN}&usd=300`, COINGECKO, at(0)), ticker)).toMatchObject({ usd: 300 });
    // Past the refresh age with both sources down: the stored price is still young enough.
    const refresh = config.FMV_REFRESH_SECONDS + 1;
    expect(await currentPrice(fmv(...broken, at(refresh)), ticker)).toMatchObject({ usd: 300 });
    // Past the staleness limit: no price at all, rather than an old one.
    expect(await currentPrice(fmv(...broken, at(config.FMV_MAX_AGE_SECONDS + 1)), ticker)).toBeNull();
  });

  it("serves /fmv, /pricing and the developer deposit's TAO estimate in upstream's shapes", async () => {
    expect(await (await callHost(API_HOST, "/fmv")).json()).toEqual({ tao: 400 });
    const pricing = await (await callHost(API_HOST, "/pricing")).json();
    expect(pricing).toMatchObject({
      tao_usd: 400,
      first_payment_bonus: { minimum_payment_usd: 100, bonus_amount_usd: 0 },
      compute_unit_estimate: { usd: expect.closeTo(0.24 / 3600, 15), tao: expect.closeTo(0.24 / 3600 / 400, 15) },
      gpu_price_estimates: {
        h200: {
          usd: { hour: 2.7375, second: 2.7375 / 3600 },
          tao: { hour: 2.7375 / 400, second: 2.7375 / 400 / 3600 },
        },
        a4000: { usd: { hour: 0.24 } },
      },
    });
    const deposit = await callHost(API_HOST, "/developer_deposit");
    expect(await deposit.json()).toMatchObject({ usd: config.DEVELOPER_DEPOSIT_USD, tao_estimate: 0 });
  });
});

describe("payment watcher", () => {
  it("credits transfers to a user's payment address once, even when a block is seen twice", async () => {
    const user = await registerUser();
    const deps = await freshWatcher();
    const block = await transfer([
      { to: user.paymentAddress, amountRao: 5n * (TAO / 2n), from: KEY_FROM },
      { to: user.paymentAddress, amountRao: 5n * (TAO / 2n), from: KEY_FROM },
      { to: randomHotkey(), amountRao: 9n * TAO },
    ]);
    const run = await processPayments(deps);
    expect(run).toMatchObject({ to: block.number, payments: 2, waiting: null });
    // 2 × 2.5 TAO × $400.25, exactly: two equal transfers in one block are two payments.
    expect(await balanceOf(user.userId)).toBe("2001.2500000000");
    expect(await paymentsOf(user.userId)).toHaveLength(2);
    expect((await processPayments(deps)).payments).toBe(0);

    // The block comes round again (a restart from an older cursor): nothing more is credited.
    await db
      .update(paymentMonitorState)
      .set({ blockNumber: block.number - 1 })
      .where(eq(paymentMonitorState.monitorId, deps.monitorId));
    expect(await processPayments(deps)).toMatchObject({ payments: 0, to: block.number });
    expect(await balanceOf(user.userId)).toBe("2001.2500000000");
    expect(await paymentsOf(user.userId)).toHaveLength(2);
    expect((await paymentsOf(user.userId))[0]).toMatchObject({
      block: block.number,
      blockHash: block.hash,
      raoAmount: "2500000000",
      fmv: 400.25,
      usdAmount: "1000.6250000000",
      purpose: "credits",
    });
  });

  it("grants the developer permission once developer deposits reach the deposit, without touching the balance", async () => {
    const user = await registerUser();
    const deps = await freshWatcher();
    await transfer([{ to: user.developerPaymentAddress, amountRao: TAO / 10n }]);
    await processPayments(deps);
    expect(await permissions(user.userId)).toBe(0);
    await transfer([{ to: user.developerPaymentAddress, amountRao: TAO / 5n }]);
    await processPayments(deps);
    // $40.025 + $80.05 ≥ $100.
    expect(await permissions(user.userId)).toBe(1);
    expect(await balanceOf(user.userId)).toBe("0.0000000000");
    expect((await paymentsOf(user.userId)).map((p) => p.purpose)).toEqual(["developer", "developer"]);
    // Only the user's own deposits count.
    expect((await developerDepositStatus(db, user.userId))?.depositedUsd).toBeCloseTo(120.075, 10);
    expect((await developerDepositStatus(db, (await registerUser()).userId))?.depositedUsd).toBe(0);
  });

  it("waits at a block that pays someone while no fresh price is known, then credits it", async () => {
    const user = await registerUser();
    const deps = await freshWatcher({ price: fixedPrice(null) });
    const block = await transfer([{ to: user.paymentAddress, amountRao: TAO }]);
    const waiting = await processPayments(deps);
    expect(waiting.to).toBe(block.number - 1);
    expect(waiting.waiting).toMatch(/no TAO price/);
    expect(await balanceOf(user.userId)).toBe("0.0000000000");
    expect(await processPayments({ ...deps, price: fixedPrice(350) })).toMatchObject({ to: block.number, payments: 1 });
    expect(await balanceOf(user.userId)).toBe("350.0000000000");
  });

  it("credits nothing from a block the chain does not report as finalised", async () => {
    const user = await registerUser();
    const finalized = { number: 500, hash: "0x01" };
    const pending: BlockTransfers = {
      number: 500,
      hash: "0x01",
      transfers: [
        {
          blockNumber: 500,
          blockHash: "0x01",
          extrinsicIndex: 1,
          eventIndex: 0,
          from: randomHotkey(),
          to: user.paymentAddress,
          amountRao: TAO,
        },
      ],
    };
    let final = false;
    const chain = {
      getFinalizedHead: async () => finalized,
      getTransfers: async (n: number) => (n === 500 && final ? pending : null),
    };
    const deps = watcher({ chain });
    const run = await processPayments(deps);
    expect(run).toMatchObject({ from: 499, to: 499, payments: 0, waiting: "block 500 is not finalised yet" });
    expect(await paymentsOf(user.userId)).toEqual([]);
    final = true;
    expect(await processPayments(deps)).toMatchObject({ to: 500, payments: 1 });
  });

  it("adds the first-payment bonus once, when credits reach the threshold", async () => {
    const user = await registerUser();
    const deps = await freshWatcher({
      price: fixedPrice(400),
      config: { ...config, FIRST_PAYMENT_BONUS_USD: 25, FIRST_PAYMENT_BONUS_THRESHOLD_USD: 100 },
    });
    await transfer([{ to: user.paymentAddress, amountRao: TAO / 5n }]);
    await processPayments(deps);
    expect(await balanceOf(user.userId)).toBe("80.0000000000");
    await transfer([{ to: user.paymentAddress, amountRao: TAO / 10n }]);
    await processPayments(deps);
    expect(await balanceOf(user.userId)).toBe("145.0000000000");
    await transfer([{ to: user.paymentAddress, amountRao: TAO }]);
    await processPayments(deps);
    expect(await balanceOf(user.userId)).toBe("545.0000000000");
  });

  it("reads finalised blocks from a subtensor node, and leaves the unfinalised head alone", async () => {
    const chain = await openFakeSubtensor();
    try {
      const id = crypto.randomUUID();
      await db.insert(users).values({
        userId: id,
        username: `u_${id.slice(0, 10)}`,
        coldkey: randomHotkey(),
        fingerprintHash: `fp-${id}`,
        paymentAddress: PAYEES.credits,
        developerPaymentAddress: PAYEES.developer,
      });
      await db.insert(balances).values({ userId: id });
      const deps = watcher({ chain, price: fixedPrice(300) });
      await db.insert(paymentMonitorState).values({ monitorId: deps.monitorId, blockNumber: 995, blockHash: "" });
      const run = await processPayments(deps);
      // Finality lags the head by 2: blocks 996–998 are processed, 999 and 1000 are not.
      expect(run).toMatchObject({ from: 995, to: FIXTURE_HEAD - 2, finalized: FIXTURE_HEAD - 2, payments: 3 });
      expect(await balanceOf(id)).toBe("1200.0000000000");
      const rows = await paymentsOf(id);
      expect(rows.map((p) => [p.block, p.extrinsicIndex, p.purpose, p.raoAmount]).sort()).toEqual([
        [996, 1, "credits", "2000000000"],
        [996, 2, "credits", "2000000000"],
        [997, 1, "developer", "1000000000"],
      ]);
      expect(rows.find((p) => p.block === FIXTURE_HEAD)).toBeUndefined();
    } finally {
      await chain.close();
    }
  });

  it("runs every minute from the cron at the dev feed's price", async () => {
    const user = await registerUser();
    const runCron = async () => {
      const ctx = createExecutionContext();
      await worker.scheduled(
        createScheduledController({ cron: "* * * * *", scheduledTime: new Date() }),
        { ...env },
        ctx,
      );
      await waitOnExecutionContext(ctx);
    };
    await runCron();
    await transfer([{ to: user.paymentAddress, amountRao: 3n * TAO }]);
    for (let i = 0; i < 5 && (await balanceOf(user.userId)) === "0.0000000000"; i++) await runCron();
    expect(await balanceOf(user.userId)).toBe("1200.0000000000");
    const me = await sendSigned(user.hotkey, { method: "GET", path: "/users/me", purpose: "me" });
    expect(await me.json()).toMatchObject({ balance: 1200 });
  });
});

describe("GET /payments", () => {
  async function paidUser(): Promise<TestUser> {
    const user = await registerUser();
    const deps = await freshWatcher();
    await transfer([{ to: user.paymentAddress, amountRao: TAO }]);
    await transfer([{ to: user.developerPaymentAddress, amountRao: TAO / 2n }]);
    await processPayments(deps);
    return user;
  }

  it("lists the caller's payments, newest first, paginated", async () => {
    const user = await paidUser();
    const res = await sendSigned(user.hotkey, { method: "GET", path: "/payments?limit=1", purpose: "payments" });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { total: number; items: Record<string, unknown>[] };
    expect(body).toMatchObject({ total: 2, page: 0, limit: 1 });
    expect(body.items).toEqual([
      expect.objectContaining({
        purpose: "developer",
        to_address: user.developerPaymentAddress,
        rao_amount: "500000000",
        fmv: 400.25,
        usd_amount: 200.125,
      }),
    ]);
    const second = await sendSigned(user.hotkey, {
      method: "GET",
      path: "/payments?limit=1&page=1",
      purpose: "payments",
    });
    expect(((await second.json()) as { items: { purpose: string }[] }).items[0]?.purpose).toBe("credits");
    const stranger = await registerUser();
    const none = await sendSigned(stranger.hotkey, { method: "GET", path: "/payments", purpose: "payments" });
    expect(await none.json()).toMatchObject({ total: 0, items: [] });
    await expectError(
      await sendSigned(user.hotkey, { method: "GET", path: "/payments?limit=1000", purpose: "payments" }),
      422,
      "validation_failed",
    );
    const count = await db
      .select({ n: sql<number>`count(*)::int` })
      .from(payments)
      .where(and(eq(payments.userId, user.userId), eq(payments.purpose, "credits")));
    expect(count[0]?.n).toBe(1);
  });

  runCommonRouteTests({
    name: "GET /payments",
    request: () => ({ method: "GET", path: "/payments", purpose: "payments" }),
  });
});

const KEY_FROM = randomHotkey();
