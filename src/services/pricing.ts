/**
 * @module `GET /pricing` in upstream's shape: the TAO price, the first-payment bonus,
 * what a compute unit costs, and every GPU's hourly and per-second price in USD and TAO.
 */
import { GPUS } from "./gpus.ts";

export interface BonusConfig {
  FIRST_PAYMENT_BONUS_USD: number;
  FIRST_PAYMENT_BONUS_THRESHOLD_USD: number;
}

const perHourAndSecond = (hour: number) => ({ hour, second: hour / 3600 });

export function pricing(taoUsd: number, bonus: BonusConfig) {
  // One second of the cheapest GPU (the A4000).
  const computeUnitUsd = Math.min(...GPUS.map((gpu) => gpu.hourlyUsd)) / 3600;
  return {
    tao_usd: taoUsd,
    first_payment_bonus: {
      minimum_payment_usd: bonus.FIRST_PAYMENT_BONUS_THRESHOLD_USD,
      bonus_amount_usd: bonus.FIRST_PAYMENT_BONUS_USD,
    },
    compute_unit_estimate: {
      usd: computeUnitUsd,
      tao: computeUnitUsd / taoUsd,
      description:
        "Price of one second of the cheapest chute (one A4000). A chute costs, per second, its GPU count times " +
        "the hourly rate of the cheapest GPU its node selector allows, divided by 3600.",
    },
    gpu_price_estimates: Object.fromEntries(
      GPUS.map((gpu) => [
        gpu.key,
        { usd: perHourAndSecond(gpu.hourlyUsd), tao: perHourAndSecond(gpu.hourlyUsd / taoUsd) },
      ]),
    ),
  };
}
