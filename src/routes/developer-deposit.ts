/**
 * @module `GET /developer_deposit` (public, unsigned; `chutes register` calls it): what a
 * developer deposit costs, in USD and, while a TAO price is known, in TAO.
 */
import { Hono } from "hono";
import type { AppEnv } from "../app.ts";
import { currentPrice } from "../services/fmv.ts";

export const developerDepositRoutes = new Hono<AppEnv>().get("/developer_deposit", async (c) => {
  const usd = c.var.config.DEVELOPER_DEPOSIT_USD;
  const price = await currentPrice(c.var.deps);
  return c.json({
    usd,
    tao_estimate: price ? usd / price.usd : null,
    message:
      usd > 0
        ? `Deposit $${usd} USD worth of TAO to your developer_payment_address to build images and deploy chutes.`
        : "No developer deposit is required on this deployment.",
  });
});
