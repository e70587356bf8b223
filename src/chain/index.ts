/**
 * @module Opens the configured chain. The rpc implementation (and `@polkadot/api` with
 * it) is imported on first use only: the bundler keeps it in the Worker but defers its
 * evaluation, so requests that never touch the chain never pay for it.
 */
import type { Config } from "../env.ts";
import type { Chain } from "./types.ts";

export type ChainConfig = Pick<Config, "CHAIN_MODE" | "SUBTENSOR_URL" | "CHAIN_FILE_URL" | "VALIDATOR_HOTKEY_SEED">;

export async function openChain(config: ChainConfig): Promise<Chain> {
  const validatorSeed = config.VALIDATOR_HOTKEY_SEED;
  if (config.CHAIN_MODE === "file") {
    const { FileChain } = await import("./file.ts");
    return new FileChain({ url: required(config.CHAIN_FILE_URL, "CHAIN_FILE_URL"), validatorSeed });
  }
  const { RpcChain } = await import("./rpc.ts");
  return RpcChain.connect({ url: required(config.SUBTENSOR_URL, "SUBTENSOR_URL"), validatorSeed });
}

// env.ts already requires the URL of the chosen mode; this keeps the types honest.
function required(value: string | undefined, name: string): string {
  if (!value) throw new Error(`${name} is not set`);
  return value;
}
