/**
 * @module Query schemas of the score routes.
 */
import { z } from "zod";
import { pagination, ss58Address } from "./common.ts";

export const minerScoresQuery = z.object({
  run_id: z.uuid().optional(),
  hotkey: ss58Address.optional(),
  ...pagination,
});

export const scoreRunsQuery = z.object({ ...pagination });
