/**
 * @module Request schemas of the `/api_keys` routes (upstream's `APIKeyArgs`).
 */
import { z } from "zod";
import { API_KEY_ACTIONS, API_KEY_OBJECT_TYPES } from "../db/schema.ts";
import { pagination } from "./common.ts";

/** Upstream's name rule: 1–24 of word characters, `$ . _ -`, whitespace and non-ASCII. */
export const API_KEY_NAME = /^[$\w\u0080-\uFFFF._\s-]{1,24}$/;
const name = z.string().regex(API_KEY_NAME, {
  message: "must be 1-24 characters: letters, digits, spaces and $._- only",
});

export const scopeBody = z.object({
  object_type: z.enum(API_KEY_OBJECT_TYPES),
  object_id: z.string().min(1).max(255).nullish(),
  action: z.enum(API_KEY_ACTIONS).nullish(),
});

export const createApiKeyBody = z
  .object({
    name,
    admin: z.boolean(),
    scopes: z.array(scopeBody).max(64).default([]),
  })
  .refine((body) => body.admin || body.scopes.length > 0, {
    message: "a key that is not admin needs at least one scope",
    path: ["scopes"],
  });

export const listApiKeysQuery = z.object({ name: z.string().max(24).optional(), ...pagination });

/** A key is addressed by its id or by its name (the CLI says "name or ID"). */
export const apiKeyPath = z.object({
  key: z.union([z.uuid(), name], { message: "must be an API key id or name" }),
});
