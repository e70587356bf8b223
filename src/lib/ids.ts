/**
 * @module Identifiers the chutes SDK derives on its own side, so the server must derive
 * them bit for bit the same way: RFC 4122 version-5 UUIDs (SHA-1 of namespace ‖ name)
 * under NAMESPACE_OID, e.g. user ids from fingerprint hashes, image ids from
 * `{username}/{name}:{tag}`, chute ids from `{username}::chute::{name}`.
 */

import { toHex, utf8 } from "./bytes.ts";
import { hexToBytes } from "./crypto.ts";

/** RFC 4122 name-space id for ISO OIDs, the namespace every chutes id uses. */
export const NAMESPACE_OID = "6ba7b812-9dad-11d1-80b4-00c04fd430c8";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** `6ba7b812-9dad-…` → `6ba7b8129dad…` (the form API keys embed). */
export function compactUuid(uuid: string): string {
  return uuid.replaceAll("-", "").toLowerCase();
}

/** 32 hex digits → the dashed 8-4-4-4-12 form; null when `hex` is not 32 hex digits. */
export function expandUuid(hex: string): string | null {
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) return null;
  const h = hex.toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** uuid5(namespace, name), as Python's `uuid.uuid5` computes it. */
export async function uuid5(name: string, namespace: string = NAMESPACE_OID): Promise<string> {
  const ns = isUuid(namespace) ? hexToBytes(compactUuid(namespace)) : null;
  if (!ns) throw new TypeError(`uuid5 namespace must be a UUID, got ${JSON.stringify(namespace)}`);
  const nameBytes = utf8(name);
  const input = new Uint8Array(ns.length + nameBytes.length);
  input.set(ns);
  input.set(nameBytes, ns.length);
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-1", input)).slice(0, 16);
  hash[6] = ((hash[6] ?? 0) & 0x0f) | 0x50; // version 5
  hash[8] = ((hash[8] ?? 0) & 0x3f) | 0x80; // RFC 4122 variant
  return expandUuid(toHex(hash)) as string;
}
