/**
 * @module Per-user wallets: generation and sealing of their mnemonics.
 *
 * A wallet is a fresh 24-word BIP39 mnemonic → substrate mini-secret → sr25519 key pair,
 * addressed in ss58 with prefix 42, exactly as substrate-interface / polkadot.js derive
 * it, so an operator can restore it with any Bittensor tool.
 *
 * The mnemonic is sealed twice before it is stored (`wallets.secret`):
 * 1. here, AES-256-GCM with `WALLET_KEY`; the associated data binds the ciphertext to its
 *    user and purpose, so a sealed secret copied onto another row does not open;
 * 2. in Postgres, `pgp_sym_encrypt(…, PG_KEY)` inside the INSERT (`walletSecretSql`), so
 *    neither a database dump nor the app key alone reveals a mnemonic.
 * Nothing reads a mnemonic back yet, so no unsealing code exists; the payments work adds
 * it where a wallet must sign.
 *
 * Pure-JS paths only (`onlyJs`): polkadot's WASM cannot load in workerd.
 */
import { encodeAddress } from "@polkadot/util-crypto/address";
import { mnemonicGenerate, mnemonicToMiniSecret } from "@polkadot/util-crypto/mnemonic";
import { sr25519PairFromSeed } from "@polkadot/util-crypto/sr25519";
import { type SQL, sql } from "drizzle-orm";
import { utf8 } from "../lib/bytes.ts";
import { sealSecret } from "../lib/crypto.ts";

/** The generic substrate network prefix that Bittensor addresses use. */
export const SS58_PREFIX = 42;

export type WalletPurpose = "payment" | "developer";

export interface GeneratedWallet {
  address: string;
  mnemonic: string;
}

export function generateWallet(): GeneratedWallet {
  const mnemonic = mnemonicGenerate(24, undefined, true);
  return { mnemonic, address: walletAddress(mnemonic) };
}

/** The ss58 (prefix 42) address of a mnemonic's sr25519 key pair. */
export function walletAddress(mnemonic: string): string {
  const pair = sr25519PairFromSeed(mnemonicToMiniSecret(mnemonic, "", undefined, true));
  return encodeAddress(pair.publicKey, SS58_PREFIX);
}

/** What the first sealing layer authenticates besides the plaintext. */
export function walletAssociatedData(userId: string, purpose: WalletPurpose): Uint8Array {
  return utf8(`chutes-edge/wallet/${userId}/${purpose}`);
}

/** The first layer: `sealSecret` with `WALLET_KEY`. */
export function sealMnemonic(mnemonic: string, walletKeyHex: string, associatedData: Uint8Array): Promise<string> {
  return sealSecret(utf8(mnemonic), walletKeyHex, associatedData);
}

/** The second layer, as the SQL value to insert into `wallets.secret` (hex of the pgp message). */
export function walletSecretSql(sealed: string, pgKey: string): SQL {
  return sql`encode(pgp_sym_encrypt(${sealed}, ${pgKey}, 'cipher-algo=aes256'), 'hex')`;
}
