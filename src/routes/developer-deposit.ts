/**
 * @module `GET /developer_deposit` (public, unsigned; `chutes register` calls it): what a
 * developer deposit costs. There is no TAO price feed yet, so `tao_estimate` is null;
 * the payments work fills it in.
 */
import { Hono } from "hono";
import type { AppEnv } from "../app.ts";

export const developerDepositRoutes = new Hono<AppEnv>().get("/developer_deposit", (c) => {
  const usd = c.var.config.DEVELOPER_DEPOSIT_USD;
  return c.json({
    usd,
    tao_estimate: null,
    message:
      usd > 0
        ? `Deposit $${usd} USD worth of TAO to your developer_payment_address to build images and deploy chutes.`
        : "No developer deposit is required on this deployment.",
  });
});
