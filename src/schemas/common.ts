/**
 * @module Zod schemas shared by several resources.
 */
import { z } from "zod";
import { isSs58Address } from "../lib/sr25519.ts";

export const ss58Address = z.string().trim().refine(isSs58Address, { message: "must be an ss58 address" });

/** `page` and `limit` query parameters, as the CLI sends them (`?limit=25&page=0`). */
export const pagination = {
  page: z.coerce.number().int().min(0).max(100_000).default(0),
  limit: z.coerce.number().int().min(1).max(100).default(25),
};

/**
 * A boolean sent as text: Python clients write `str(bool)` (`True` / `False`) in query
 * strings and form fields; `true`/`false`/`1`/`0` are accepted too.
 */
export const textBool = z
  .enum(["True", "False", "true", "false", "1", "0"], { message: "must be True or False" })
  .transform((value) => value === "True" || value === "true" || value === "1");

/** An optional id of one of the caller's logos; the SDK sends `__none__` (or nothing) for none. */
export const logoIdField = z
  .union([z.literal("__none__"), z.literal(""), z.uuid({ message: "must be a logo id (a UUID)" })])
  .nullish()
  .transform((value) => (value && value !== "__none__" ? value.toLowerCase() : null));

/** `{id or name}` path segments that may hold `/` and `:` (`chutes/vllm:0.7.2`, `org/model`). */
export const objectRef = z.object({ ref: z.string().min(1).max(256) });

/** A string of at most `maxBytes` bytes of UTF-8 (limits on what is stored, not on characters). */
export const utf8Text = (maxBytes: number) =>
  z.string().refine((text) => new TextEncoder().encode(text).byteLength <= maxBytes, {
    message: `must be at most ${maxBytes} bytes`,
  });
