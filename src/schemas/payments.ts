/**
 * @module Query schemas of the payment routes.
 */
import { z } from "zod";
import { pagination } from "./common.ts";

export const paymentsQuery = z.object({ ...pagination });
