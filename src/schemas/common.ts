/**
 * @module Zod schemas shared by several resources.
 */
import { z } from "zod";
import { isSs58Address } from "../lib/signatures.ts";

export const ss58Address = z.string().trim().refine(isSs58Address, { message: "must be an ss58 address" });

/** `page` and `limit` query parameters, as the CLI sends them (`?limit=25&page=0`). */
export const pagination = {
  page: z.coerce.number().int().min(0).max(100_000).default(0),
  limit: z.coerce.number().int().min(1).max(100).default(25),
};
