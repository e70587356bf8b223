/**
 * @module Runtime metadata (v14) for the fake subtensor node, holding only what the
 * platform uses, each part at the index and with the encoding the real runtime has:
 * - pallets `System` = 0 (`Events`), `Balances` = 5, `TransactionPayment` = 6,
 *   `SubtensorModule` = 7 (`Uids`, `WeightsSetRateLimit`, call `set_weights` = 0);
 * - events `System.ExtrinsicSuccess` = 0, `Balances.Transfer` = 2 / `Deposit` = 7 /
 *   `Withdraw` = 8, `TransactionPayment.TransactionFeePaid` = 0 (sparse variant indexes
 *   are legal in scale-info, so the omitted variants keep the others' indexes);
 * - the runtime's transaction extensions, in order;
 * - type paths as the runtime declares them, which is what `@polkadot/types` keys on.
 * Sources and what could not be checked: docs/protocols.md, "Chain".
 */
import { Metadata, TypeRegistry } from "@polkadot/types";
import { u8aConcat } from "@polkadot/util";

type Field = { name?: string; type: number; typeName?: string };
type Variant = { name: string; index: number; fields?: Field[] };
type Def =
  | { Primitive: string }
  | { Composite: { fields: Field[] } }
  | { Variant: { variants: Variant[] } }
  | { Sequence: { type: number } }
  | { Array: { len: number; type: number } }
  | { Tuple: number[] }
  | { Compact: { type: number } };

class TypeTable {
  /** PortableType JSON, as `createType("MetadataV14")` takes it. */
  readonly types: {
    id: number;
    type: { path: string[]; params: { name: string; type: number | null }[]; def: unknown; docs: string[] };
  }[] = [];
  readonly #byKey = new Map<string, number>();

  add(def: Def, path: string[] = [], params: { name: string; type: number | null }[] = []): number {
    const key = JSON.stringify([def, path, params]);
    const known = this.#byKey.get(key);
    if (known !== undefined) return known;
    const id = this.types.length;
    this.types.push({ id, type: { path, params, def: withDocs(def), docs: [] } });
    this.#byKey.set(key, id);
    return id;
  }

  prim(name: string): number {
    return this.add({ Primitive: name });
  }
}

/** Adds the empty docs and explicit nulls the SCALE encoding of scale-info needs. */
function withDocs(def: Def): unknown {
  if ("Composite" in def) return { Composite: { fields: def.Composite.fields.map(fieldWithDocs) } };
  if ("Variant" in def) {
    return {
      Variant: {
        variants: def.Variant.variants.map((v) => ({ ...v, fields: (v.fields ?? []).map(fieldWithDocs), docs: [] })),
      },
    };
  }
  return def;
}

const fieldWithDocs = (f: Field) => ({ name: f.name ?? null, type: f.type, typeName: f.typeName ?? null, docs: [] });

const named = (fields: Record<string, number>): Field[] =>
  Object.entries(fields).map(([name, type]) => ({ name, type }));

export interface SubtensorMetadata {
  /** SCALE bytes: "meta", version 14, MetadataV14. */
  bytes: Uint8Array;
  /** The transaction extension identifiers, in the order their data is signed. */
  extensions: string[];
}

export function buildSubtensorMetadata(): SubtensorMetadata {
  const t = new TypeTable();
  const unit = t.add({ Tuple: [] });
  const u8 = t.prim("U8");
  const u16 = t.prim("U16");
  const u32 = t.prim("U32");
  const u64 = t.prim("U64");
  const bytes32 = t.add({ Array: { len: 32, type: u8 } });
  const bytes64 = t.add({ Array: { len: 64, type: u8 } });
  const bytes65 = t.add({ Array: { len: 65, type: u8 } });
  const bytes20 = t.add({ Array: { len: 20, type: u8 } });
  const vecU8 = t.add({ Sequence: { type: u8 } });
  const vecU16 = t.add({ Sequence: { type: u16 } });
  const compactU32 = t.add({ Compact: { type: u32 } });
  const compactU64 = t.add({ Compact: { type: u64 } });
  const compactUnit = t.add({ Compact: { type: unit } });
  const accountId = t.add({ Composite: { fields: [{ type: bytes32, typeName: "[u8; 32]" }] } }, [
    "sp_core",
    "crypto",
    "AccountId32",
  ]);
  const h256 = t.add({ Composite: { fields: [{ type: bytes32, typeName: "[u8; 32]" }] } }, ["primitive_types", "H256"]);
  const vecH256 = t.add({ Sequence: { type: h256 } });
  const netUid = t.add({ Composite: { fields: [{ type: u16, typeName: "u16" }] } }, [
    "subtensor_runtime_common",
    "NetUid",
  ]);

  // --- calls -------------------------------------------------------------------------
  const subtensorCall = t.add(
    {
      Variant: {
        variants: [
          {
            name: "set_weights",
            index: 0,
            fields: [
              { name: "netuid", type: netUid, typeName: "NetUid" },
              { name: "dests", type: vecU16, typeName: "Vec<u16>" },
              { name: "weights", type: vecU16, typeName: "Vec<u16>" },
              { name: "version_key", type: u64, typeName: "u64" },
            ],
          },
        ],
      },
    },
    ["pallet_subtensor", "pallet", "Call"],
    [{ name: "T", type: null }],
  );
  const runtimeCall = t.add(
    { Variant: { variants: [{ name: "SubtensorModule", index: 7, fields: [{ type: subtensorCall }] }] } },
    ["node_subtensor_runtime", "RuntimeCall"],
  );

  // --- events ------------------------------------------------------------------------
  const weight = t.add({ Composite: { fields: named({ ref_time: compactU64, proof_size: compactU64 }) } }, [
    "sp_weights",
    "weight_v2",
    "Weight",
  ]);
  const dispatchClass = t.add(
    {
      Variant: {
        variants: [
          { name: "Normal", index: 0 },
          { name: "Operational", index: 1 },
          { name: "Mandatory", index: 2 },
        ],
      },
    },
    ["frame_support", "dispatch", "DispatchClass"],
  );
  const pays = t.add(
    {
      Variant: {
        variants: [
          { name: "Yes", index: 0 },
          { name: "No", index: 1 },
        ],
      },
    },
    ["frame_support", "dispatch", "Pays"],
  );
  const dispatchInfo = t.add({ Composite: { fields: named({ weight, class: dispatchClass, pays_fee: pays }) } }, [
    "frame_system",
    "DispatchEventInfo",
  ]);
  const systemEvent = t.add(
    { Variant: { variants: [{ name: "ExtrinsicSuccess", index: 0, fields: named({ dispatch_info: dispatchInfo }) }] } },
    ["frame_system", "pallet", "Event"],
    [{ name: "T", type: null }],
  );
  const balancesEvent = t.add(
    {
      Variant: {
        variants: [
          { name: "Transfer", index: 2, fields: named({ from: accountId, to: accountId, amount: u64 }) },
          { name: "Deposit", index: 7, fields: named({ who: accountId, amount: u64 }) },
          { name: "Withdraw", index: 8, fields: named({ who: accountId, amount: u64 }) },
        ],
      },
    },
    ["pallet_balances", "pallet", "Event"],
    [
      { name: "T", type: null },
      { name: "I", type: null },
    ],
  );
  const paymentEvent = t.add(
    {
      Variant: {
        variants: [
          { name: "TransactionFeePaid", index: 0, fields: named({ who: accountId, actual_fee: u64, tip: u64 }) },
        ],
      },
    },
    ["pallet_transaction_payment", "pallet", "Event"],
    [{ name: "T", type: null }],
  );
  const runtimeEvent = t.add(
    {
      Variant: {
        variants: [
          { name: "System", index: 0, fields: [{ type: systemEvent }] },
          { name: "Balances", index: 5, fields: [{ type: balancesEvent }] },
          { name: "TransactionPayment", index: 6, fields: [{ type: paymentEvent }] },
        ],
      },
    },
    ["node_subtensor_runtime", "RuntimeEvent"],
  );
  const phase = t.add(
    {
      Variant: {
        variants: [
          { name: "ApplyExtrinsic", index: 0, fields: [{ type: u32 }] },
          { name: "Finalization", index: 1 },
          { name: "Initialization", index: 2 },
        ],
      },
    },
    ["frame_system", "Phase"],
  );
  const eventRecord = t.add(
    { Composite: { fields: named({ phase, event: runtimeEvent, topics: vecH256 }) } },
    ["frame_system", "EventRecord"],
    [
      { name: "E", type: runtimeEvent },
      { name: "T", type: h256 },
    ],
  );
  const vecEventRecord = t.add({ Sequence: { type: eventRecord } });

  // --- extrinsic ---------------------------------------------------------------------
  const multiAddress = t.add(
    {
      Variant: {
        variants: [
          { name: "Id", index: 0, fields: [{ type: accountId }] },
          { name: "Index", index: 1, fields: [{ type: compactUnit }] },
          { name: "Raw", index: 2, fields: [{ type: vecU8 }] },
          { name: "Address32", index: 3, fields: [{ type: bytes32 }] },
          { name: "Address20", index: 4, fields: [{ type: bytes20 }] },
        ],
      },
    },
    ["sp_runtime", "multiaddress", "MultiAddress"],
    [
      { name: "AccountId", type: accountId },
      { name: "AccountIndex", type: unit },
    ],
  );
  const multiSignature = t.add(
    {
      Variant: {
        variants: [
          { name: "Ed25519", index: 0, fields: [{ type: bytes64 }] },
          { name: "Sr25519", index: 1, fields: [{ type: bytes64 }] },
          { name: "Ecdsa", index: 2, fields: [{ type: bytes65 }] },
        ],
      },
    },
    ["sp_runtime", "MultiSignature"],
  );
  const era = t.add(
    {
      Variant: {
        variants: [
          { name: "Immortal", index: 0 },
          ...Array.from({ length: 255 }, (_, i) => ({ name: `Mortal${i + 1}`, index: i + 1, fields: [{ type: u8 }] })),
        ],
      },
    },
    ["sp_runtime", "generic", "era", "Era"],
  );
  const mode = t.add(
    {
      Variant: {
        variants: [
          { name: "Disabled", index: 0 },
          { name: "Enabled", index: 1 },
        ],
      },
    },
    ["frame_metadata_hash_extension", "Mode"],
  );
  const optionHash = t.add(
    {
      Variant: {
        variants: [
          { name: "None", index: 0 },
          { name: "Some", index: 1, fields: [{ type: bytes32 }] },
        ],
      },
    },
    ["Option"],
    [{ name: "T", type: bytes32 }],
  );
  const ext = (path: string[], fields: Field[] = []) =>
    t.add({ Composite: { fields } }, path, [{ name: "T", type: null }]);
  // identifier, its signed-extra type, its additional-signed type (runtime/src/lib.rs,
  // `TransactionExtensions`).
  const extensions: [string, number, number][] = [
    ["CheckNonZeroSender", ext(["frame_system", "extensions", "check_non_zero_sender", "CheckNonZeroSender"]), unit],
    ["CheckSpecVersion", ext(["frame_system", "extensions", "check_spec_version", "CheckSpecVersion"]), u32],
    ["CheckTxVersion", ext(["frame_system", "extensions", "check_tx_version", "CheckTxVersion"]), u32],
    ["CheckGenesis", ext(["frame_system", "extensions", "check_genesis", "CheckGenesis"]), h256],
    ["CheckMortality", ext(["frame_system", "extensions", "check_mortality", "CheckMortality"], [{ type: era }]), h256],
    ["CheckNonce", ext(["node_subtensor_runtime", "check_nonce", "CheckNonce"], [{ type: compactU32 }]), unit],
    ["CheckWeight", ext(["frame_system", "extensions", "check_weight", "CheckWeight"]), unit],
    [
      "ChargeTransactionPayment",
      ext(["pallet_transaction_payment", "ChargeTransactionPayment"], [{ type: compactU64 }]),
      unit,
    ],
    [
      "SubtensorTransactionExtension",
      ext(["pallet_subtensor", "transaction_extension", "SubtensorTransactionExtension"]),
      unit,
    ],
    ["DrandPriority", ext(["pallet_drand", "drand_priority", "DrandPriority"]), unit],
    [
      "CheckMetadataHash",
      ext(["frame_metadata_hash_extension", "CheckMetadataHash"], [{ name: "mode", type: mode }]),
      optionHash,
    ],
  ];
  const extra = t.add({ Tuple: extensions.map(([, type]) => type) });
  const uncheckedExtrinsic = t.add(
    { Composite: { fields: [{ type: vecU8 }] } },
    ["fp_self_contained", "unchecked_extrinsic", "UncheckedExtrinsic"],
    [
      { name: "Address", type: multiAddress },
      { name: "Call", type: runtimeCall },
      { name: "Signature", type: multiSignature },
      { name: "Extra", type: extra },
    ],
  );
  const runtime = t.add({ Composite: { fields: [] } }, ["node_subtensor_runtime", "Runtime"]);

  // --- pallets -----------------------------------------------------------------------
  const optionU16Storage = (name: string, hashers: string[], key: number) => ({
    name,
    modifier: "Optional",
    type: { Map: { hashers, key, value: u16 } },
    fallback: "0x00",
    docs: [],
  });
  const pallets = [
    {
      name: "System",
      index: 0,
      storage: {
        prefix: "System",
        items: [{ name: "Events", modifier: "Default", type: { Plain: vecEventRecord }, fallback: "0x00", docs: [] }],
      },
      calls: null,
      events: { type: systemEvent },
      constants: [],
      errors: null,
    },
    {
      name: "Balances",
      index: 5,
      storage: null,
      calls: null,
      events: { type: balancesEvent },
      constants: [],
      errors: null,
    },
    {
      name: "TransactionPayment",
      index: 6,
      storage: null,
      calls: null,
      events: { type: paymentEvent },
      constants: [],
      errors: null,
    },
    {
      name: "SubtensorModule",
      index: 7,
      storage: {
        prefix: "SubtensorModule",
        items: [
          optionU16Storage("Uids", ["Identity", "Blake2_128Concat"], t.add({ Tuple: [netUid, accountId] })),
          {
            name: "WeightsSetRateLimit",
            modifier: "Default",
            type: { Map: { hashers: ["Identity"], key: netUid, value: u64 } },
            // The runtime's default: 100 blocks.
            fallback: "0x6400000000000000",
            docs: [],
          },
        ],
      },
      calls: { type: subtensorCall },
      events: null,
      constants: [],
      errors: null,
    },
  ];

  const registry = new TypeRegistry();
  const v14 = registry.createType("MetadataV14", {
    lookup: { types: t.types },
    pallets,
    extrinsic: {
      type: uncheckedExtrinsic,
      version: 4,
      signedExtensions: extensions.map(([identifier, type, additionalSigned]) => ({
        identifier,
        type,
        additionalSigned,
      })),
    },
    type: runtime,
  });
  const bytes = u8aConcat(new TextEncoder().encode("meta"), new Uint8Array([14]), v14.toU8a());
  // Round-trip through the library's own decoder, so a malformed table fails here.
  new Metadata(new TypeRegistry(), bytes);
  return { bytes, extensions: extensions.map(([identifier]) => identifier) };
}
