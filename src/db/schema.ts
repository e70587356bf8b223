/**
 * @module The Postgres schema of the whole platform (drizzle), the source of truth for
 * storage shapes. `npm run db:generate` turns changes here into SQL in `migrations/`.
 *
 * Follows upstream's data model where it fits (names, ids, columns the CLI and miners
 * see) and departs where architecture.md decides otherwise:
 * - money is `numeric` (exact decimal), never float, and the balance lives in its own
 *   table so billing never contends with profile updates;
 * - wallet mnemonics live in `wallets`, encrypted, away from the `users` row;
 * - API keys are stored as SHA-256 of the key (architecture §5.2);
 * - `invocations` is range-partitioned by `started_at` (weekly). drizzle-kit cannot
 *   declare partitioning, so the generated CREATE TABLE is edited by hand in its
 *   migration and partitions are made by `ensure_invocation_partition()` (see
 *   docs/storage-schema.md).
 */
import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  check,
  doublePrecision,
  index,
  integer,
  jsonb,
  numeric,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";
import type { Cord } from "../schemas/cords.ts";
import type { NodeSelector } from "../services/gpus.ts";

const createdAt = () => timestamp("created_at", { withTimezone: true }).notNull().defaultNow();
const updatedAt = () => timestamp("updated_at", { withTimezone: true }).notNull().defaultNow();
/** USD amounts: exact decimals, 10 places (a billed second can be a few micro-dollars). */
const usd = (name: string) => numeric(name, { precision: 20, scale: 10 });

// ---------------------------------------------------------------------------------------
// Users, wallets, balances, API keys
// ---------------------------------------------------------------------------------------

export const users = pgTable(
  "users",
  {
    /** uuid5(NAMESPACE_OID, initial fingerprint hash), as upstream. */
    userId: text("user_id").primaryKey(),
    username: text("username").notNull(),
    /** ss58 hotkey used for signatures; null for API-only users made by an admin. */
    hotkey: text("hotkey"),
    coldkey: text("coldkey").notNull(),
    /** BLAKE2b-512 hex of the fingerprint (the fingerprint itself is shown once). */
    fingerprintHash: text("fingerprint_hash").notNull(),
    paymentAddress: text("payment_address").notNull(),
    developerPaymentAddress: text("developer_payment_address").notNull(),
    permissionsBitmask: bigint("permissions_bitmask", { mode: "number" }).notNull().default(0),
    validatorHotkey: text("validator_hotkey"),
    subnetOwnerHotkey: text("subnet_owner_hotkey"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    // Case-insensitive: usernames become slugs and registry repository names, which are
    // lower case, so "Alice" and "alice" would otherwise share them.
    uniqueIndex("users_username_key").on(sql`lower(${t.username})`),
    uniqueIndex("users_hotkey_key").on(t.hotkey),
    uniqueIndex("users_fingerprint_hash_key").on(t.fingerprintHash),
    uniqueIndex("users_payment_address_key").on(t.paymentAddress),
    uniqueIndex("users_developer_payment_address_key").on(t.developerPaymentAddress),
    uniqueIndex("users_validator_hotkey_key").on(t.validatorHotkey),
    uniqueIndex("users_subnet_owner_hotkey_key").on(t.subnetOwnerHotkey),
  ],
);

/**
 * One row per generated wallet. `secret` is the BIP39 mnemonic encrypted twice: AES-GCM
 * in the app (WALLET_KEY), then pgcrypto `pgp_sym_encrypt` in Postgres (PG_KEY).
 */
export const wallets = pgTable(
  "wallets",
  {
    userId: text("user_id")
      .notNull()
      .references(() => users.userId, { onDelete: "cascade" }),
    purpose: text("purpose", { enum: ["payment", "developer"] }).notNull(),
    address: text("address").notNull(),
    secret: text("secret").notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.purpose] }), uniqueIndex("wallets_address_key").on(t.address)],
);

/** The spendable USD balance. Changed only by billing, payments and admin adjustments. */
export const balances = pgTable("balances", {
  userId: text("user_id")
    .primaryKey()
    .references(() => users.userId, { onDelete: "cascade" }),
  balance: usd("balance").notNull().default("0"),
  bonusUsed: boolean("bonus_used").notNull().default(false),
  updatedAt: updatedAt(),
});

export const apiKeys = pgTable(
  "api_keys",
  {
    apiKeyId: text("api_key_id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.userId, { onDelete: "cascade" }),
    name: text("name").notNull(),
    admin: boolean("admin").notNull().default(false),
    /** SHA-256 hex of the full `cpk_…` key. */
    keyHash: text("key_hash").notNull(),
    createdAt: createdAt(),
    lastUsedAt: timestamp("last_used_at", { withTimezone: true }),
  },
  (t) => [
    uniqueIndex("api_keys_user_name_key").on(t.userId, t.name),
    uniqueIndex("api_keys_key_hash_key").on(t.keyHash),
  ],
);

export const API_KEY_OBJECT_TYPES = ["images", "chutes", "invocations"] as const;
export const API_KEY_ACTIONS = ["read", "write", "delete", "invoke"] as const;

export const apiKeyScopes = pgTable(
  "api_key_scopes",
  {
    scopeId: text("scope_id").primaryKey(),
    apiKeyId: text("api_key_id")
      .notNull()
      .references(() => apiKeys.apiKeyId, { onDelete: "cascade" }),
    objectType: text("object_type", { enum: API_KEY_OBJECT_TYPES }).notNull(),
    /** null: every object of the type. */
    objectId: text("object_id"),
    /** null: every action. */
    action: text("action", { enum: API_KEY_ACTIONS }),
  },
  (t) => [index("api_key_scopes_key_idx").on(t.apiKeyId)],
);

// ---------------------------------------------------------------------------------------
// Catalogue: logos, images, chutes
// ---------------------------------------------------------------------------------------

export const logos = pgTable("logos", {
  logoId: text("logo_id").primaryKey(),
  userId: text("user_id")
    .notNull()
    .references(() => users.userId, { onDelete: "cascade" }),
  /** R2 key `logos/{user_id}/{logo_id}.{ext}`. */
  objectKey: text("object_key").notNull(),
  contentType: text("content_type").notNull(),
  createdAt: createdAt(),
});

export const IMAGE_STATUSES = ["pending", "building", "built", "error"] as const;

export const images = pgTable(
  "images",
  {
    /** uuid5(NAMESPACE_OID, "{username}/{name}:{tag}"), as the SDK derives it. */
    imageId: text("image_id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.userId),
    name: text("name").notNull(),
    tag: text("tag").notNull(),
    readme: text("readme").notNull().default(""),
    logoId: text("logo_id").references(() => logos.logoId, { onDelete: "set null" }),
    public: boolean("public").notNull().default(false),
    status: text("status", { enum: IMAGE_STATUSES }).notNull().default("pending"),
    /** Why the build failed, when status is `error`. */
    buildError: text("build_error"),
    chutesVersion: text("chutes_version"),
    createdAt: createdAt(),
    buildStartedAt: timestamp("build_started_at", { withTimezone: true }),
    buildCompletedAt: timestamp("build_completed_at", { withTimezone: true }),
  },
  (t) => [
    uniqueIndex("images_user_name_tag_key").on(t.userId, t.name, t.tag),
    index("images_name_public_idx").on(t.name, t.public),
  ],
);

export const chutes = pgTable(
  "chutes",
  {
    /** uuid5(NAMESPACE_OID, "{username}::chute::{name}"), as the SDK derives it. */
    chuteId: text("chute_id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.userId),
    name: text("name").notNull(),
    /** `{username}-{name}` normalised; the chute's subdomain. */
    slug: text("slug").notNull(),
    tagline: text("tagline").notNull().default(""),
    readme: text("readme").notNull().default(""),
    toolDescription: text("tool_description"),
    imageId: text("image_id")
      .notNull()
      .references(() => images.imageId),
    logoId: text("logo_id").references(() => logos.logoId, { onDelete: "set null" }),
    public: boolean("public").notNull().default(false),
    /** null, `vllm`, `diffusion` or `tei`. */
    standardTemplate: text("standard_template"),
    cords: jsonb("cords").$type<Cord[]>().notNull(),
    /** The selector with `supported_gpus` and `compute_multiplier` derived (upstream's stored shape). */
    nodeSelector: jsonb("node_selector").$type<NodeSelector>().notNull(),
    code: text("code").notNull().default(""),
    filename: text("filename").notNull().default(""),
    refStr: text("ref_str").notNull().default("entrypoint:chute"),
    /** uuid5(NAMESPACE_OID, "{image_id}:{code}"). */
    version: text("version").notNull(),
    chutesVersion: text("chutes_version"),
    /** Fraction 0..1 taken off the price; 1 means free to invoke. */
    discount: doublePrecision("discount").notNull().default(0),
    invocationCount: bigint("invocation_count", { mode: "number" }).notNull().default(0),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("chutes_slug_key").on(t.slug),
    uniqueIndex("chutes_user_name_key").on(t.userId, t.name),
    index("chutes_image_idx").on(t.imageId),
    /** `llm.` routing: the template chute serving a model name (`findTemplateChute`). */
    index("chutes_template_name_idx").on(t.standardTemplate, t.name),
    check("chutes_discount_range", sql`${t.discount} >= 0 and ${t.discount} <= 1`),
  ],
);

/** Private chutes shared with named users. */
export const chuteShares = pgTable(
  "chute_shares",
  {
    chuteId: text("chute_id")
      .notNull()
      .references(() => chutes.chuteId, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => users.userId, { onDelete: "cascade" }),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.chuteId, t.userId] })],
);

/** One bounty per chute waiting for its first instance; claimed by the first success. */
export const bounties = pgTable("bounties", {
  chuteId: text("chute_id")
    .primaryKey()
    .references(() => chutes.chuteId, { onDelete: "cascade" }),
  bounty: integer("bounty").notNull().default(100),
  previousBounty: integer("previous_bounty").notNull().default(100),
  lastIncreasedAt: timestamp("last_increased_at", { withTimezone: true }).notNull().defaultNow(),
});

// ---------------------------------------------------------------------------------------
// Miner plane: metagraph, GPU nodes, instances
// ---------------------------------------------------------------------------------------

/** Mirror of the subnet metagraph, synced by cron from the chain. */
export const metagraphNodes = pgTable(
  "metagraph_nodes",
  {
    hotkey: text("hotkey").primaryKey(),
    netuid: integer("netuid").notNull(),
    /** The uid; negative for manual entries that the sync never removes. */
    nodeId: integer("node_id").notNull(),
    coldkey: text("coldkey").notNull(),
    stake: doublePrecision("stake").notNull().default(0),
    incentive: doublePrecision("incentive").notNull().default(0),
    trust: doublePrecision("trust").notNull().default(0),
    vtrust: doublePrecision("vtrust").notNull().default(0),
    ip: text("ip"),
    port: integer("port"),
    ipType: integer("ip_type"),
    protocol: integer("protocol"),
    /** sha256 of the node's synced fields: the row is rewritten only when it changes. */
    checksum: text("checksum").notNull(),
    lastUpdated: bigint("last_updated", { mode: "number" }),
    syncedAt: timestamp("synced_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("metagraph_nodes_netuid_uid_idx").on(t.netuid, t.nodeId)],
);

export const NODE_STATUSES = ["pending", "verifying", "verified", "failed"] as const;

/** One row per GPU a miner registers. */
export const nodes = pgTable(
  "nodes",
  {
    /** The GPU's UUID as the miner reports it. */
    uuid: text("uuid").primaryKey(),
    minerHotkey: text("miner_hotkey")
      .notNull()
      .references(() => metagraphNodes.hotkey, { onDelete: "cascade" }),
    /** Key into the supported-GPU table (`h100_sxm`, …). */
    gpuIdentifier: text("gpu_identifier").notNull(),
    name: text("name").notNull(),
    memory: bigint("memory", { mode: "number" }).notNull(),
    major: integer("major").notNull(),
    minor: integer("minor").notNull(),
    processors: integer("processors").notNull(),
    sxm: boolean("sxm").notNull(),
    clockRate: doublePrecision("clock_rate").notNull(),
    maxThreadsPerProcessor: integer("max_threads_per_processor").notNull(),
    concurrentKernels: boolean("concurrent_kernels").notNull(),
    ecc: boolean("ecc").notNull(),
    deviceIndex: integer("device_index").notNull().default(0),
    /** GPU-proof seed: an unsigned 64-bit integer, kept exact as numeric. */
    seed: numeric("seed", { precision: 20, scale: 0 }).notNull(),
    verificationHost: text("verification_host").notNull(),
    verificationPort: integer("verification_port").notNull(),
    status: text("status", { enum: NODE_STATUSES }).notNull().default("pending"),
    /**
     * `{hotkey}::{uuid}`: the verification this GPU was registered with (one per POST /nodes),
     * which `GET /nodes/verification_status?task_id=` reports on.
     */
    verificationTask: text("verification_task"),
    /** When the current verification began (a sweep fails one stuck past its limit). */
    verificationStartedAt: timestamp("verification_started_at", { withTimezone: true }),
    verificationError: text("verification_error"),
    verifiedAt: timestamp("verified_at", { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [index("nodes_miner_idx").on(t.minerHotkey), index("nodes_task_idx").on(t.verificationTask)],
);

export const instances = pgTable(
  "instances",
  {
    instanceId: text("instance_id").primaryKey(),
    chuteId: text("chute_id")
      .notNull()
      .references(() => chutes.chuteId, { onDelete: "cascade" }),
    /** The chute version this instance runs. */
    version: text("version").notNull(),
    minerHotkey: text("miner_hotkey")
      .notNull()
      .references(() => metagraphNodes.hotkey, { onDelete: "cascade" }),
    minerUid: integer("miner_uid").notNull(),
    minerColdkey: text("miner_coldkey").notNull(),
    host: text("host").notNull(),
    port: integer("port").notNull(),
    region: text("region").notNull().default("n/a"),
    active: boolean("active").notNull().default(false),
    verified: boolean("verified").notNull().default(false),
    chutesVersion: text("chutes_version"),
    /**
     * The per-instance session key (architecture §5.7), encrypted with the app's
     * WALLET_KEY-derived key; never returned by any endpoint.
     */
    sessionKey: text("session_key"),
    verificationError: text("verification_error"),
    consecutiveFailures: integer("consecutive_failures").notNull().default(0),
    lastVerifiedAt: timestamp("last_verified_at", { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("instances_host_port_key").on(t.host, t.port),
    index("instances_chute_state_idx").on(t.chuteId, t.active, t.verified),
    index("instances_miner_idx").on(t.minerHotkey),
  ],
);

/** Which GPUs an instance runs on; a GPU belongs to at most one instance. */
export const instanceNodes = pgTable(
  "instance_nodes",
  {
    instanceId: text("instance_id")
      .notNull()
      .references(() => instances.instanceId, { onDelete: "cascade" }),
    nodeId: text("node_id")
      .notNull()
      .references(() => nodes.uuid),
  },
  (t) => [primaryKey({ columns: [t.instanceId, t.nodeId] }), uniqueIndex("instance_nodes_node_key").on(t.nodeId)],
);

/** Deployment history that outlives instances (scoring, audits, cleanup). */
export const instanceAudit = pgTable(
  "instance_audit",
  {
    instanceId: text("instance_id").primaryKey(),
    chuteId: text("chute_id").notNull(),
    version: text("version").notNull(),
    minerUid: integer("miner_uid").notNull(),
    minerHotkey: text("miner_hotkey").notNull(),
    region: text("region"),
    createdAt: createdAt(),
    verifiedAt: timestamp("verified_at", { withTimezone: true }),
    deletedAt: timestamp("deleted_at", { withTimezone: true }),
    deletionReason: text("deletion_reason"),
  },
  (t) => [
    index("instance_audit_ts_idx").on(t.verifiedAt, t.deletedAt),
    index("instance_audit_miner_idx").on(t.minerHotkey),
  ],
);

// ---------------------------------------------------------------------------------------
// GPU agents and their jobs
// ---------------------------------------------------------------------------------------

/** Validator-operated GPU agents; each signs its callbacks with its Ed25519 key. */
export const gpuAgents = pgTable(
  "gpu_agents",
  {
    agentId: text("agent_id").primaryKey(),
    name: text("name").notNull(),
    /** Ed25519 public key, hex. */
    publicKey: text("public_key").notNull(),
    disabled: boolean("disabled").notNull().default(false),
    lastSeenAt: timestamp("last_seen_at", { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("gpu_agents_name_key").on(t.name), uniqueIndex("gpu_agents_public_key_key").on(t.publicKey)],
);

export const GPU_JOB_STATUSES = ["queued", "running", "succeeded", "failed", "expired"] as const;

export const gpuJobs = pgTable(
  "gpu_jobs",
  {
    jobId: text("job_id").primaryKey(),
    op: text("op").notNull(),
    payload: jsonb("payload").notNull(),
    status: text("status", { enum: GPU_JOB_STATUSES }).notNull().default("queued"),
    agentId: text("agent_id").references(() => gpuAgents.agentId, { onDelete: "set null" }),
    attempts: integer("attempts").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull().default(3),
    /** A running job whose lease lapses goes back to the queue. */
    leaseExpiresAt: timestamp("lease_expires_at", { withTimezone: true }),
    /** How long a claim (or a heartbeat) holds the job; short, so a dead agent's job returns soon. */
    leaseMs: integer("lease_ms").notNull().default(60_000),
    claimedAt: timestamp("claimed_at", { withTimezone: true }),
    completedAt: timestamp("completed_at", { withTimezone: true }),
    /** After this the job fails instead of running late. */
    deadlineAt: timestamp("deadline_at", { withTimezone: true }).notNull(),
    result: jsonb("result"),
    error: text("error"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("gpu_jobs_status_created_idx").on(t.status, t.createdAt)],
);

// ---------------------------------------------------------------------------------------
// Invocations (partitioned), payments, prices
// ---------------------------------------------------------------------------------------

/**
 * One row per invocation attempt. Range-partitioned by `started_at` (weekly): the
 * primary key therefore includes `started_at`. The cost is written in the same
 * transaction as the balance deduction, exactly once, only for a success.
 */
export const invocations = pgTable(
  "invocations",
  {
    invocationId: text("invocation_id").notNull(),
    /** Groups the attempts (retries on other instances) of one client request. */
    parentInvocationId: text("parent_invocation_id").notNull(),
    chuteId: text("chute_id").notNull(),
    chuteUserId: text("chute_user_id").notNull(),
    functionName: text("function_name").notNull(),
    userId: text("user_id").notNull(),
    imageId: text("image_id").notNull(),
    imageUserId: text("image_user_id").notNull(),
    instanceId: text("instance_id").notNull(),
    minerUid: integer("miner_uid").notNull(),
    minerHotkey: text("miner_hotkey").notNull(),
    startedAt: timestamp("started_at", { withTimezone: true }).notNull().defaultNow(),
    completedAt: timestamp("completed_at", { withTimezone: true }),
    /** null for a success. */
    errorMessage: text("error_message"),
    computeMultiplier: doublePrecision("compute_multiplier").notNull(),
    bounty: integer("bounty").notNull().default(0),
    /** `{ttft, tps, tokens, it, ot}` for LLMs, `{sps, steps}` for diffusion. */
    metrics: jsonb("metrics"),
    costUsd: usd("cost_usd").notNull().default("0"),
    requestPath: text("request_path"),
    responsePath: text("response_path"),
  },
  (t) => [
    primaryKey({ columns: [t.invocationId, t.startedAt] }),
    index("invocations_started_chute_idx").on(t.startedAt, t.chuteId),
    index("invocations_parent_idx").on(t.parentInvocationId),
    index("invocations_user_started_idx").on(t.userId, t.startedAt),
    index("invocations_miner_started_idx").on(t.minerHotkey, t.startedAt),
  ],
);

export const PAYMENT_PURPOSES = ["credits", "developer"] as const;

/** A transfer to a user's payment or developer address, credited once. */
export const payments = pgTable(
  "payments",
  {
    /**
     * uuid5(NAMESPACE_OID, "{block}:{extrinsic_index}:{event_index}"): one per transfer
     * event. Upstream's "{block}:{to}:{from}:{amount}" merged two equal transfers of one
     * block into one credit.
     */
    paymentId: text("payment_id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.userId),
    block: bigint("block", { mode: "number" }).notNull(),
    blockHash: text("block_hash").notNull(),
    /** -1 for a transfer made outside any extrinsic (a runtime hook). */
    extrinsicIndex: integer("extrinsic_index").notNull(),
    eventIndex: integer("event_index").notNull(),
    fromAddress: text("from_address").notNull(),
    toAddress: text("to_address").notNull(),
    raoAmount: numeric("rao_amount", { precision: 30, scale: 0 }).notNull(),
    /** TAO/USD used for this payment. */
    fmv: doublePrecision("fmv").notNull(),
    usdAmount: usd("usd_amount").notNull(),
    purpose: text("purpose", { enum: PAYMENT_PURPOSES }).notNull().default("credits"),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("payments_block_extrinsic_event_key").on(t.block, t.extrinsicIndex, t.eventIndex),
    index("payments_user_created_idx").on(t.userId, t.createdAt),
  ],
);

/** Where the payment watcher resumes: the last finalised block it processed. */
export const paymentMonitorState = pgTable("payment_monitor_state", {
  monitorId: text("monitor_id").primaryKey(),
  blockNumber: bigint("block_number", { mode: "number" }).notNull(),
  blockHash: text("block_hash").notNull(),
  updatedAt: updatedAt(),
});

/** TAO/USD price log (primary and fallback sources). */
export const fmvHistory = pgTable(
  "fmv_history",
  {
    ticker: text("ticker").notNull(),
    source: text("source").notNull(),
    price: doublePrecision("price").notNull(),
    fetchedAt: timestamp("fetched_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.ticker, t.fetchedAt] })],
);

// ---------------------------------------------------------------------------------------
// Validator duties: hourly exports, scores and weights
// ---------------------------------------------------------------------------------------

/** One row per exported hour; the CSV and its signed manifest live in R2. */
export const exportManifests = pgTable("export_manifests", {
  /** The hour the export covers (UTC, minute 0). */
  hourStart: timestamp("hour_start", { withTimezone: true }).primaryKey(),
  csvKey: text("csv_key").notNull(),
  manifestKey: text("manifest_key").notNull(),
  rowCount: integer("row_count").notNull(),
  /** Size of the CSV object in bytes. */
  byteLength: bigint("byte_length", { mode: "number" }).notNull(),
  sha256: text("sha256").notNull(),
  merkleRoot: text("merkle_root").notNull(),
  signerHotkey: text("signer_hotkey").notNull(),
  signature: text("signature").notNull(),
  createdAt: createdAt(),
});

export const SCORE_OUTCOMES = ["submitted", "recorded", "skipped", "failed"] as const;

/** A scoring run over a window of invocations, and what it submitted on chain. */
export const scoreRuns = pgTable(
  "score_runs",
  {
    runId: text("run_id").primaryKey(),
    netuid: integer("netuid").notNull(),
    windowStart: timestamp("window_start", { withTimezone: true }).notNull(),
    windowEnd: timestamp("window_end", { withTimezone: true }).notNull(),
    /** The export manifests (hour → sha256) the run was computed from. */
    exportHashes: jsonb("export_hashes").notNull(),
    /** Whether weights went to the chain (rpc) or were recorded (the dev chain). */
    submitted: boolean("submitted").notNull().default(false),
    /** `submitted` (rpc), `recorded` (file), `skipped` (too soon, nothing to weigh, …) or `failed`. */
    outcome: text("outcome", { enum: SCORE_OUTCOMES }).notNull(),
    submission: jsonb("submission"),
    /** Why the weights were skipped or failed. */
    error: text("error"),
    createdAt: createdAt(),
  },
  (t) => [index("score_runs_netuid_created_idx").on(t.netuid, t.createdAt)],
);

export const minerScores = pgTable(
  "miner_scores",
  {
    runId: text("run_id")
      .notNull()
      .references(() => scoreRuns.runId, { onDelete: "cascade" }),
    minerHotkey: text("miner_hotkey").notNull(),
    uid: integer("uid"),
    computeUnits: doublePrecision("compute_units").notNull(),
    invocationCount: integer("invocation_count").notNull(),
    uniqueChuteCount: integer("unique_chute_count").notNull(),
    bountyCount: integer("bounty_count").notNull(),
    score: doublePrecision("score").notNull(),
    /** The u16 weight submitted for this miner. */
    weight: integer("weight").notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.minerHotkey] })],
);

// ---------------------------------------------------------------------------------------
// Image builders and their build jobs
// ---------------------------------------------------------------------------------------

/** Image builders (infra/builder); each signs its requests with its Ed25519 key. */
export const builders = pgTable(
  "builders",
  {
    builderId: text("builder_id").primaryKey(),
    name: text("name").notNull(),
    /** Ed25519 public key, hex. */
    publicKey: text("public_key").notNull(),
    disabled: boolean("disabled").notNull().default(false),
    lastSeenAt: timestamp("last_seen_at", { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("builders_name_key").on(t.name), uniqueIndex("builders_public_key_key").on(t.publicKey)],
);

export const BUILD_JOB_STATUSES = ["queued", "running", "succeeded", "failed"] as const;

/**
 * One build job per image, queued with the upload. The image's own status (`images.status`)
 * is what the API reports; this row is the queue: who holds the build, its lease, its
 * deadline, and the hash of the push token that lets the holder push that one repository.
 */
export const imageBuilds = pgTable(
  "image_builds",
  {
    imageId: text("image_id")
      .primaryKey()
      .references(() => images.imageId, { onDelete: "cascade" }),
    status: text("status", { enum: BUILD_JOB_STATUSES }).notNull().default("queued"),
    builderId: text("builder_id").references(() => builders.builderId, { onDelete: "set null" }),
    attempts: integer("attempts").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull().default(2),
    leaseMs: integer("lease_ms").notNull().default(60_000),
    leaseExpiresAt: timestamp("lease_expires_at", { withTimezone: true }),
    /** Set at each claim: the attempt fails if it has not finished by then. */
    deadlineAt: timestamp("deadline_at", { withTimezone: true }),
    /** SHA-256 hex of the running attempt's registry push token; null otherwise. */
    pushTokenHash: text("push_token_hash"),
    claimedAt: timestamp("claimed_at", { withTimezone: true }),
    completedAt: timestamp("completed_at", { withTimezone: true }),
    error: text("error"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("image_builds_status_created_idx").on(t.status, t.createdAt)],
);
