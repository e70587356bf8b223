/**
 * @module Validator → miner HTTP calls (node verification servers and chute instances):
 * plain `fetch()` to `http://{host}:{port}` (the compatibility date honours custom ports),
 * each with a time limit, and every failure turned into a sentence a miner can act on
 * ("could not be reached", "did not answer within 30 s", "answered HTTP 500").
 *
 * Signed calls carry the validator hotkey's `X-Chutes-Hotkey` / `X-Chutes-Nonce` /
 * `X-Chutes-Signature` over `{hotkey}:{nonce}:{sha256hex(body)}`, the scheme users sign
 * with (docs/protocols.md, "Instance protocol"). Signing happens at send time, never
 * ahead: miners refuse stale nonces.
 */
import { signerFromSeed } from "../chain/keys.ts";
import type { Config } from "../env.ts";
import { toHex, utf8 } from "../lib/bytes.ts";
import { sha256Hex } from "../lib/crypto.ts";
import { HOTKEY_HEADER, hotkeyMessage, NONCE_HEADER, SIGNATURE_HEADER } from "../lib/signatures.ts";

export type MinerReply =
  | { ok: true; status: number; text: string; elapsedMs: number }
  | { ok: false; reason: string; elapsedMs: number };

export interface MinerCall {
  url: string;
  /** JSON body (POST); absent: GET. */
  body?: unknown;
  timeoutMs: number;
  /** Sign with the validator hotkey (needs VALIDATOR_HOTKEY_SEED). */
  sign?: boolean;
}

/** The signed headers for `body`, or null when the validator has no hotkey configured. */
export async function validatorHeaders(
  config: Pick<Config, "VALIDATOR_HOTKEY_SEED">,
  body: string,
): Promise<Record<string, string> | null> {
  if (!config.VALIDATOR_HOTKEY_SEED) return null;
  const signer = signerFromSeed(config.VALIDATOR_HOTKEY_SEED);
  const nonce = String(Math.floor(Date.now() / 1000));
  const signature = toHex(signer.sign(utf8(hotkeyMessage(signer.hotkey, nonce, await sha256Hex(body)))));
  return { [HOTKEY_HEADER]: signer.hotkey, [NONCE_HEADER]: nonce, [SIGNATURE_HEADER]: signature };
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/** One call to a miner host; never throws. `elapsedMs` runs from send to the whole body read. */
export async function callMiner(config: Pick<Config, "VALIDATOR_HOTKEY_SEED">, call: MinerCall): Promise<MinerReply> {
  const body = call.body === undefined ? undefined : JSON.stringify(call.body);
  const headers: Record<string, string> = body === undefined ? {} : { "content-type": "application/json" };
  if (call.sign) {
    const signed = await validatorHeaders(config, body ?? "");
    if (!signed) {
      return { ok: false, reason: "the validator has no hotkey configured (VALIDATOR_HOTKEY_SEED)", elapsedMs: 0 };
    }
    Object.assign(headers, signed);
  }
  const started = Date.now();
  const target = new URL(call.url);
  const where = `${target.host}${target.pathname}`;
  try {
    const res = await fetch(call.url, {
      method: body === undefined ? "GET" : "POST",
      headers,
      body,
      signal: AbortSignal.timeout(call.timeoutMs),
      redirect: "manual",
    });
    const text = await res.text();
    const elapsedMs = Date.now() - started;
    if (res.status < 200 || res.status > 299) {
      const detail = text.slice(0, 200).trim();
      return { ok: false, reason: `${where} answered HTTP ${res.status}${detail ? `: ${detail}` : ""}`, elapsedMs };
    }
    return { ok: true, status: res.status, text, elapsedMs };
  } catch (error) {
    const elapsedMs = Date.now() - started;
    const name = (error as Error).name;
    if (name === "TimeoutError" || name === "AbortError") {
      return { ok: false, reason: `${where} did not answer within ${seconds(call.timeoutMs)}`, elapsedMs };
    }
    return {
      ok: false,
      reason: `${where} could not be reached or closed the connection (${(error as Error).message})`,
      elapsedMs,
    };
  }
}

/** Parses a reply's JSON; a reason when it is not JSON. */
export function replyJson(
  reply: MinerReply & { ok: true },
): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, value: JSON.parse(reply.text) };
  } catch {
    return { ok: false, reason: "the answer is not JSON" };
  }
}
