/**
 * @module Money in: `GET /payments` (the caller's credited transfers, newest first,
 * paginated; hotkey purpose `payments`), and the public price endpoints in upstream's
 * shapes, `GET /fmv` and `GET /pricing` (503 while no price within the staleness limit
 * is known; upstream answered 500).
 */
import { type Context, Hono } from "hono";
import type { AppEnv } from "../app.ts";
import { requireUser } from "../lib/auth.ts";
import { ApiError } from "../lib/errors.ts";
import { pageBody, pageSlice } from "../lib/pagination.ts";
import { queryParams } from "../lib/validation.ts";
import { paymentsQuery } from "../schemas/payments.ts";
import { currentPrice, type TaoPrice } from "../services/fmv.ts";
import { userPayments } from "../services/payments.ts";
import { pricing } from "../services/pricing.ts";

async function requirePrice(c: Context<AppEnv>): Promise<TaoPrice> {
  const price = await currentPrice(c.var.deps);
  if (!price) {
    throw new ApiError("dependency_unavailable", "No current TAO price is available; retry shortly.", {
      headers: { "retry-after": "60" },
    });
  }
  return price;
}

export const paymentsRoutes = new Hono<AppEnv>()
  .get("/payments", requireUser({ purpose: "payments" }), async (c) => {
    const query = queryParams(c, paymentsQuery);
    const { total, items } = await userPayments(c.var.deps.db, c.var.auth.user.userId, pageSlice(query));
    return c.json(
      pageBody(
        query,
        total,
        items.map((p) => ({
          payment_id: p.paymentId,
          block: p.block,
          block_hash: p.blockHash,
          extrinsic_index: p.extrinsicIndex,
          event_index: p.eventIndex,
          from_address: p.fromAddress,
          to_address: p.toAddress,
          rao_amount: p.raoAmount,
          fmv: p.fmv,
          usd_amount: Number(p.usdAmount),
          purpose: p.purpose,
          created_at: p.createdAt.toISOString(),
        })),
      ),
    );
  })
  .get("/fmv", async (c) => c.json({ tao: (await requirePrice(c)).usd }))
  .get("/pricing", async (c) => c.json(pricing((await requirePrice(c)).usd, c.var.config)));
