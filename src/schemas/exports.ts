/**
 * @module Request schemas of the export routes.
 */
import { z } from "zod";
import { ss58Address } from "./common.ts";

/** Upstream's bounds: default 100, anything ≤ 0 means the default, at most 10 000. */
export const RECENT_LIMIT = { default: 100, max: 10_000 } as const;

export const recentQuery = z.object({
  hotkey: z.preprocess((v) => (v === "" ? undefined : v), ss58Address.optional()),
  limit: z.coerce
    .number()
    .int()
    .default(RECENT_LIMIT.default)
    .transform((n) => (n <= 0 ? RECENT_LIMIT.default : Math.min(n, RECENT_LIMIT.max))),
});
