/**
 * @module Helpers for chain tests inside workerd: fresh ss58 keys, the dev chain's
 * registration API (the same one a simulated miner uses), and the fake subtensor node.
 */
import { env } from "cloudflare:workers";
import { encodeAddress } from "@polkadot/util-crypto/address/encode";
import { inject } from "vitest";
import { openChain } from "../../src/chain/index.ts";
import type { Chain } from "../../src/chain/types.ts";
import { configFor } from "../../src/env.ts";
import { VALIDATOR_SEED } from "../support/chain-fixture.ts";

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

/** Adds `blocks` blocks to the dev chain (each a transfer between two fresh addresses). */
export async function advanceDevChain(blocks: number): Promise<void> {
  for (let i = 0; i < blocks; i++) {
    const res = await fetch(`${devChainUrl()}/transfers`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([{ from: randomHotkey(), to: randomHotkey(), amount_rao: "1" }]),
    });
    if (!res.ok) throw new Error(`dev chain refused a transfer: ${res.status}`);
  }
}

/** The rpc chain on the lane's fake subtensor node, signing as the fixture validator. */
export function openFakeSubtensor(): Promise<Chain> {
  return openChain(
    configFor({
      ...env,
      CHAIN_MODE: "rpc",
      SUBTENSOR_URL: inject("fakeSubtensorUrl"),
      VALIDATOR_HOTKEY_SEED: VALIDATOR_SEED,
    }),
  );
}
