/**
 * @module Request schemas of the `/users` routes.
 */
import { z } from "zod";
import { ss58Address } from "./common.ts";

/** Upstream's rule, which the CLI also checks before it sends. */
export const USERNAME = /^[a-zA-Z0-9_]{3,15}$/;

export const registerBody = z.object({
  username: z.string().regex(USERNAME, {
    message: "Username must be 3-15 characters and contain only alphanumeric/underscore characters",
  }),
  coldkey: ss58Address,
});

/** The fingerprint is the account's password: long enough not to be guessed. */
export const fingerprintBody = z.object({
  fingerprint: z
    .string()
    .min(16, { message: "must be at least 16 characters" })
    .max(128)
    .regex(/^[\x21-\x7e]+$/, { message: "must be printable ASCII without spaces" }),
});

/** `?hotkey=…&signature=…`: the linked key signs `{hotkey}:{username}`. */
export const linkQuery = z.object({
  hotkey: ss58Address,
  signature: z.string().regex(/^(0x)?[0-9a-fA-F]{128}$/, { message: "must be 128 hex digits" }),
});
