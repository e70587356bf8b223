/**
 * @module Keys, a seeded metagraph and the fake node's seed types, shared by the chain
 * tests (Node and workerd) and the global setup that starts the fake subtensor node for
 * the workers lane. No Node imports: workerd tests import it too.
 */
import { encodeAddress } from "@polkadot/util-crypto/address/encode";

export interface FakeAxon {
  block: number;
  version: number;
  ip: bigint;
  port: number;
  ipType: number;
  protocol: number;
}

export interface FakeNeuron {
  uid: number;
  hotkey: string;
  coldkey: string;
  active?: boolean;
  /** (coldkey, rao) pairs, as `NeuronInfoLite.stake`. */
  stake?: [string, bigint][];
  /** Raw u16 values. */
  incentive?: number;
  trust?: number;
  validatorTrust?: number;
  lastUpdate?: number;
  validatorPermit?: boolean;
  axon?: FakeAxon;
}

export interface FakeTransfer {
  from: string;
  to: string;
  amountRao: bigint;
}

export interface FakeSubtensorOptions {
  subnets: Record<number, FakeNeuron[]>;
  /** Best block number (blocks 0..head exist). */
  head: number;
  /** Finalised head = head − lag. */
  finalityLag?: number;
  /** Block number → signed balance transfers included in that block, in order. */
  transfers?: Record<number, FakeTransfer[]>;
  weightsRateLimit?: Record<number, number>;
}

/** Deterministic dev keys: seed = 32 bytes of one repeated value. */
export const seed = (byte: number) => `0x${byte.toString(16).padStart(2, "0").repeat(32)}`;

/** ss58 (prefix 42) of the sr25519 keys from seed(1) … seed(6), precomputed. */
export const KEYS = {
  validator: "5CcyqxXnJucaCnQQvvUg5EPzj1uoNAxACZvzArHw5aVDvgNH",
  validatorColdkey: "5CfCr47V5Dte6bwxNBE8K9oNnQd9fiay6aDEEkgYtFv7w4Fq",
  minerA: "5FJ4gu9eVX6DG4qYi1hxkUgu1yaTm1CnQ4MiiZPjPVaXiATo",
  minerB: "5GUEW7AH1VGD9XPqTJ7ZEbcTbLW6ZHkFJ8dAHWRMz2Q1MEuU",
  minerC: "5DeZAMjvpmKhgfoju3A2nSarhrSWDrk25vDi38UocrqVUB6z",
  coldkey: "5HMmMroL5k2nR6FYVQMeK2WUZUpcycRBRswnq1zmrnvLrgpw",
} as const;

export const VALIDATOR_SEED = seed(1);

/** The netuid the workers lane's fake node serves (unused by every other test). */
export const WORKERS_RPC_NETUID = 3071;
/** A second subnet on that node with the same neurons, for the weight setter's tests alone. */
export const WORKERS_SCORING_NETUID = 3072;

/** uid 0: the validator; uid 1: served axon, large stake; uid 2: no axon, zero stake; uid 3: IPv6. */
export function fixtureNeurons(): FakeNeuron[] {
  return [
    {
      uid: 0,
      hotkey: KEYS.validator,
      coldkey: KEYS.validatorColdkey,
      stake: [[KEYS.validatorColdkey, 1_500_000_000_000n]],
      validatorTrust: 65_535,
      validatorPermit: true,
      lastUpdate: 880,
    },
    {
      uid: 1,
      hotkey: KEYS.minerA,
      coldkey: KEYS.coldkey,
      // Two entries (own stake and a delegation) are summed; the first is near u64::MAX.
      stake: [
        [KEYS.coldkey, 18_000_000_000_000_000_000n],
        [KEYS.validatorColdkey, 123_456_789n],
      ],
      incentive: 32_768,
      trust: 65_535,
      lastUpdate: 12,
      axon: { block: 500, version: 7, ip: 0xc0a8_0a01n, port: 8091, ipType: 4, protocol: 4 },
    },
    { uid: 2, hotkey: KEYS.minerB, coldkey: KEYS.coldkey, active: false },
    {
      uid: 3,
      hotkey: KEYS.minerC,
      coldkey: KEYS.coldkey,
      stake: [[KEYS.coldkey, 1n]],
      incentive: 1,
      axon: {
        block: 900,
        version: 1,
        ip: 0x2001_0db8_0000_0000_0000_0000_0000_0001n,
        port: 443,
        ipType: 6,
        protocol: 4,
      },
    },
  ];
}

export const FIXTURE_HEAD = 1000;

/**
 * A user's payment and developer-deposit addresses that the fixture chain pays: two
 * equal 2 TAO credits in block 996, a 1 TAO developer deposit in 997, and 5 TAO in the
 * head block 1000, which is not final (the payment tests of the workers lane).
 */
export const PAYEES = {
  credits: encodeAddress(new Uint8Array(32).fill(0x51), 42),
  developer: encodeAddress(new Uint8Array(32).fill(0x52), 42),
};

/** The fixture chain, with the fixture neurons on each netuid given. */
export function fixtureChain(...netuids: number[]): FakeSubtensorOptions {
  return {
    subnets: Object.fromEntries(netuids.map((netuid) => [netuid, fixtureNeurons()])),
    head: FIXTURE_HEAD,
    finalityLag: 2,
    transfers: {
      995: [
        { from: KEYS.minerA, to: KEYS.coldkey, amountRao: 2_500_000_000n },
        { from: KEYS.minerB, to: KEYS.validatorColdkey, amountRao: 18_446_744_073_709_551_615n },
      ],
      996: [
        { from: KEYS.minerA, to: PAYEES.credits, amountRao: 2_000_000_000n },
        { from: KEYS.minerA, to: PAYEES.credits, amountRao: 2_000_000_000n },
      ],
      997: [{ from: KEYS.minerC, to: PAYEES.developer, amountRao: 1_000_000_000n }],
      [FIXTURE_HEAD]: [
        { from: KEYS.minerA, to: KEYS.coldkey, amountRao: 7n },
        { from: KEYS.minerB, to: PAYEES.credits, amountRao: 5_000_000_000n },
      ],
    },
    weightsRateLimit: Object.fromEntries(netuids.map((netuid) => [netuid, 100])),
  };
}
