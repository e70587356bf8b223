/**
 * @module Helpers for chain tests inside workerd: fresh ss58 keys, and the dev chain's
 * registration API (the same one a simulated miner uses).
 */
import { env } from "cloudflare:workers";
import { encodeAddress } from "@polkadot/util-crypto/address/encode";

/** A random, valid ss58 address (prefix 42): unique hotkeys keep tests independent. */
export function randomHotkey(): string {
  return encodeAddress(crypto.getRandomValues(new Uint8Array(32)), 42);
}

function devChainUrl(): string {
  const url = (env as Record<string, unknown>).CHAIN_FILE_URL;
  if (typeof url !== "string") throw new Error("CHAIN_FILE_URL is not set in the workers lane");
  return url;
}

export interface DevNeuronInput {
  hotkey: string;
  coldkey: string;
  uid?: number;
  stake?: number;
  incentive?: number;
  axon?: { ip: string; port: number } | null;
}

export async function registerDevNeuron(netuid: number, neuron: DevNeuronInput): Promise<number> {
  const res = await fetch(`${devChainUrl()}/neurons`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ netuid, ...neuron }),
  });
  const body = (await res.json()) as { uid: number; detail?: string };
  if (!res.ok) throw new Error(`dev chain refused the neuron: ${body.detail}`);
  return body.uid;
}

export async function deregisterDevNeuron(netuid: number, hotkey: string): Promise<void> {
  const res = await fetch(`${devChainUrl()}/neurons/${netuid}/${hotkey}`, { method: "DELETE" });
  if (!res.ok) throw new Error(`dev chain could not remove ${hotkey}: ${res.status}`);
}
