-- Hand edits to drizzle-kit's output (drizzle cannot declare them; see docs/storage-schema.md):
-- pgcrypto for wallet secrets, RANGE partitioning of "invocations", and the partition helper.
CREATE EXTENSION IF NOT EXISTS pgcrypto;
--> statement-breakpoint
CREATE TABLE "api_key_scopes" (
	"scope_id" text PRIMARY KEY NOT NULL,
	"api_key_id" text NOT NULL,
	"object_type" text NOT NULL,
	"object_id" text,
	"action" text
);
--> statement-breakpoint
CREATE TABLE "api_keys" (
	"api_key_id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"name" text NOT NULL,
	"admin" boolean DEFAULT false NOT NULL,
	"key_hash" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_used_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "balances" (
	"user_id" text PRIMARY KEY NOT NULL,
	"balance" numeric(20, 10) DEFAULT '0' NOT NULL,
	"bonus_used" boolean DEFAULT false NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "bounties" (
	"chute_id" text PRIMARY KEY NOT NULL,
	"bounty" integer DEFAULT 100 NOT NULL,
	"previous_bounty" integer DEFAULT 100 NOT NULL,
	"last_increased_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "chute_shares" (
	"chute_id" text NOT NULL,
	"user_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "chute_shares_chute_id_user_id_pk" PRIMARY KEY("chute_id","user_id")
);
--> statement-breakpoint
CREATE TABLE "chutes" (
	"chute_id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"name" text NOT NULL,
	"slug" text NOT NULL,
	"tagline" text DEFAULT '' NOT NULL,
	"readme" text DEFAULT '' NOT NULL,
	"tool_description" text,
	"image_id" text NOT NULL,
	"logo_id" text,
	"public" boolean DEFAULT false NOT NULL,
	"standard_template" text,
	"cords" jsonb NOT NULL,
	"node_selector" jsonb NOT NULL,
	"code" text DEFAULT '' NOT NULL,
	"filename" text DEFAULT '' NOT NULL,
	"ref_str" text DEFAULT 'entrypoint:chute' NOT NULL,
	"version" text NOT NULL,
	"chutes_version" text,
	"discount" double precision DEFAULT 0 NOT NULL,
	"invocation_count" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "chutes_discount_range" CHECK ("chutes"."discount" >= 0 and "chutes"."discount" <= 1)
);
--> statement-breakpoint
CREATE TABLE "export_manifests" (
	"hour_start" timestamp with time zone PRIMARY KEY NOT NULL,
	"csv_key" text NOT NULL,
	"manifest_key" text NOT NULL,
	"row_count" integer NOT NULL,
	"sha256" text NOT NULL,
	"merkle_root" text NOT NULL,
	"signer_hotkey" text NOT NULL,
	"signature" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "fmv_history" (
	"ticker" text NOT NULL,
	"source" text NOT NULL,
	"price" double precision NOT NULL,
	"fetched_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "fmv_history_ticker_fetched_at_pk" PRIMARY KEY("ticker","fetched_at")
);
--> statement-breakpoint
CREATE TABLE "gpu_agents" (
	"agent_id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"public_key" text NOT NULL,
	"disabled" boolean DEFAULT false NOT NULL,
	"last_seen_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "gpu_jobs" (
	"job_id" text PRIMARY KEY NOT NULL,
	"op" text NOT NULL,
	"payload" jsonb NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"agent_id" text,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer DEFAULT 3 NOT NULL,
	"lease_expires_at" timestamp with time zone,
	"deadline_at" timestamp with time zone NOT NULL,
	"result" jsonb,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "images" (
	"image_id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"name" text NOT NULL,
	"tag" text NOT NULL,
	"readme" text DEFAULT '' NOT NULL,
	"logo_id" text,
	"public" boolean DEFAULT false NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"build_error" text,
	"chutes_version" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"build_started_at" timestamp with time zone,
	"build_completed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "instance_audit" (
	"instance_id" text PRIMARY KEY NOT NULL,
	"chute_id" text NOT NULL,
	"version" text NOT NULL,
	"miner_uid" integer NOT NULL,
	"miner_hotkey" text NOT NULL,
	"region" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"verified_at" timestamp with time zone,
	"deleted_at" timestamp with time zone,
	"deletion_reason" text
);
--> statement-breakpoint
CREATE TABLE "instance_nodes" (
	"instance_id" text NOT NULL,
	"node_id" text NOT NULL,
	CONSTRAINT "instance_nodes_instance_id_node_id_pk" PRIMARY KEY("instance_id","node_id")
);
--> statement-breakpoint
CREATE TABLE "instances" (
	"instance_id" text PRIMARY KEY NOT NULL,
	"chute_id" text NOT NULL,
	"version" text NOT NULL,
	"miner_hotkey" text NOT NULL,
	"miner_uid" integer NOT NULL,
	"miner_coldkey" text NOT NULL,
	"host" text NOT NULL,
	"port" integer NOT NULL,
	"region" text DEFAULT 'n/a' NOT NULL,
	"active" boolean DEFAULT false NOT NULL,
	"verified" boolean DEFAULT false NOT NULL,
	"chutes_version" text,
	"session_key" text,
	"verification_error" text,
	"consecutive_failures" integer DEFAULT 0 NOT NULL,
	"last_verified_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "invocations" (
	"invocation_id" text NOT NULL,
	"parent_invocation_id" text NOT NULL,
	"chute_id" text NOT NULL,
	"chute_user_id" text NOT NULL,
	"function_name" text NOT NULL,
	"user_id" text NOT NULL,
	"image_id" text NOT NULL,
	"image_user_id" text NOT NULL,
	"instance_id" text NOT NULL,
	"miner_uid" integer NOT NULL,
	"miner_hotkey" text NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp with time zone,
	"error_message" text,
	"compute_multiplier" double precision NOT NULL,
	"bounty" integer DEFAULT 0 NOT NULL,
	"metrics" jsonb,
	"cost_usd" numeric(20, 10) DEFAULT '0' NOT NULL,
	"request_path" text,
	"response_path" text,
	CONSTRAINT "invocations_invocation_id_started_at_pk" PRIMARY KEY("invocation_id","started_at")
) PARTITION BY RANGE ("started_at");
--> statement-breakpoint
CREATE TABLE "logos" (
	"logo_id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"object_key" text NOT NULL,
	"content_type" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "metagraph_nodes" (
	"hotkey" text PRIMARY KEY NOT NULL,
	"netuid" integer NOT NULL,
	"node_id" integer NOT NULL,
	"coldkey" text NOT NULL,
	"stake" double precision DEFAULT 0 NOT NULL,
	"incentive" double precision DEFAULT 0 NOT NULL,
	"trust" double precision DEFAULT 0 NOT NULL,
	"vtrust" double precision DEFAULT 0 NOT NULL,
	"ip" text,
	"port" integer,
	"ip_type" integer,
	"protocol" integer,
	"checksum" text NOT NULL,
	"last_updated" bigint,
	"synced_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "miner_scores" (
	"run_id" text NOT NULL,
	"miner_hotkey" text NOT NULL,
	"uid" integer,
	"compute_units" double precision NOT NULL,
	"invocation_count" integer NOT NULL,
	"unique_chute_count" integer NOT NULL,
	"bounty_count" integer NOT NULL,
	"score" double precision NOT NULL,
	"weight" integer NOT NULL,
	CONSTRAINT "miner_scores_run_id_miner_hotkey_pk" PRIMARY KEY("run_id","miner_hotkey")
);
--> statement-breakpoint
CREATE TABLE "nodes" (
	"uuid" text PRIMARY KEY NOT NULL,
	"miner_hotkey" text NOT NULL,
	"gpu_identifier" text NOT NULL,
	"name" text NOT NULL,
	"memory" bigint NOT NULL,
	"major" integer NOT NULL,
	"minor" integer NOT NULL,
	"processors" integer NOT NULL,
	"sxm" boolean NOT NULL,
	"clock_rate" double precision NOT NULL,
	"max_threads_per_processor" integer NOT NULL,
	"concurrent_kernels" boolean NOT NULL,
	"ecc" boolean NOT NULL,
	"device_index" integer DEFAULT 0 NOT NULL,
	"seed" numeric(20, 0) NOT NULL,
	"verification_host" text NOT NULL,
	"verification_port" integer NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"verification_error" text,
	"verified_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "payment_monitor_state" (
	"monitor_id" text PRIMARY KEY NOT NULL,
	"block_number" bigint NOT NULL,
	"block_hash" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "payments" (
	"payment_id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"block" bigint NOT NULL,
	"block_hash" text NOT NULL,
	"extrinsic_index" integer NOT NULL,
	"event_index" integer NOT NULL,
	"from_address" text NOT NULL,
	"to_address" text NOT NULL,
	"rao_amount" numeric(30, 0) NOT NULL,
	"fmv" double precision NOT NULL,
	"usd_amount" numeric(20, 10) NOT NULL,
	"purpose" text DEFAULT 'credits' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "score_runs" (
	"run_id" text PRIMARY KEY NOT NULL,
	"window_start" timestamp with time zone NOT NULL,
	"window_end" timestamp with time zone NOT NULL,
	"export_hashes" jsonb NOT NULL,
	"submitted" boolean DEFAULT false NOT NULL,
	"submission" jsonb,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "users" (
	"user_id" text PRIMARY KEY NOT NULL,
	"username" text NOT NULL,
	"hotkey" text,
	"coldkey" text NOT NULL,
	"fingerprint_hash" text NOT NULL,
	"payment_address" text NOT NULL,
	"developer_payment_address" text NOT NULL,
	"permissions_bitmask" bigint DEFAULT 0 NOT NULL,
	"validator_hotkey" text,
	"subnet_owner_hotkey" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "wallets" (
	"user_id" text NOT NULL,
	"purpose" text NOT NULL,
	"address" text NOT NULL,
	"secret" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "wallets_user_id_purpose_pk" PRIMARY KEY("user_id","purpose")
);
--> statement-breakpoint
ALTER TABLE "api_key_scopes" ADD CONSTRAINT "api_key_scopes_api_key_id_api_keys_api_key_id_fk" FOREIGN KEY ("api_key_id") REFERENCES "public"."api_keys"("api_key_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_user_id_users_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("user_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "balances" ADD CONSTRAINT "balances_user_id_users_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("user_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bounties" ADD CONSTRAINT "bounties_chute_id_chutes_chute_id_fk" FOREIGN KEY ("chute_id") REFERENCES "public"."chutes"("chute_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "chute_shares" ADD CONSTRAINT "chute_shares_chute_id_chutes_chute_id_fk" FOREIGN KEY ("chute_id") REFERENCES "public"."chutes"("chute_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "chute_shares" ADD CONSTRAINT "chute_shares_user_id_users_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("user_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "chutes" ADD CONSTRAINT "chutes_user_id_users_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("user_id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "chutes" ADD CONSTRAINT "chutes_image_id_images_image_id_fk" FOREIGN KEY ("image_id") REFERENCES "public"."images"("image_id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "chutes" ADD CONSTRAINT "chutes_logo_id_logos_logo_id_fk" FOREIGN KEY ("logo_id") REFERENCES "public"."logos"("logo_id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "gpu_jobs" ADD CONSTRAINT "gpu_jobs_agent_id_gpu_agents_agent_id_fk" FOREIGN KEY ("agent_id") REFERENCES "public"."gpu_agents"("agent_id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "images" ADD CONSTRAINT "images_user_id_users_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("user_id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "images" ADD CONSTRAINT "images_logo_id_logos_logo_id_fk" FOREIGN KEY ("logo_id") REFERENCES "public"."logos"("logo_id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "instance_nodes" ADD CONSTRAINT "instance_nodes_instance_id_instances_instance_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("instance_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "instance_nodes" ADD CONSTRAINT "instance_nodes_node_id_nodes_uuid_fk" FOREIGN KEY ("node_id") REFERENCES "public"."nodes"("uuid") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "instances" ADD CONSTRAINT "instances_chute_id_chutes_chute_id_fk" FOREIGN KEY ("chute_id") REFERENCES "public"."chutes"("chute_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "instances" ADD CONSTRAINT "instances_miner_hotkey_metagraph_nodes_hotkey_fk" FOREIGN KEY ("miner_hotkey") REFERENCES "public"."metagraph_nodes"("hotkey") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "logos" ADD CONSTRAINT "logos_user_id_users_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("user_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "miner_scores" ADD CONSTRAINT "miner_scores_run_id_score_runs_run_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."score_runs"("run_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "nodes" ADD CONSTRAINT "nodes_miner_hotkey_metagraph_nodes_hotkey_fk" FOREIGN KEY ("miner_hotkey") REFERENCES "public"."metagraph_nodes"("hotkey") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "payments" ADD CONSTRAINT "payments_user_id_users_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("user_id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "wallets" ADD CONSTRAINT "wallets_user_id_users_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("user_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "api_key_scopes_key_idx" ON "api_key_scopes" USING btree ("api_key_id");--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_user_name_key" ON "api_keys" USING btree ("user_id","name");--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_key_hash_key" ON "api_keys" USING btree ("key_hash");--> statement-breakpoint
CREATE UNIQUE INDEX "chutes_slug_key" ON "chutes" USING btree ("slug");--> statement-breakpoint
CREATE UNIQUE INDEX "chutes_user_name_key" ON "chutes" USING btree ("user_id","name");--> statement-breakpoint
CREATE INDEX "chutes_image_idx" ON "chutes" USING btree ("image_id");--> statement-breakpoint
CREATE UNIQUE INDEX "gpu_agents_name_key" ON "gpu_agents" USING btree ("name");--> statement-breakpoint
CREATE UNIQUE INDEX "gpu_agents_public_key_key" ON "gpu_agents" USING btree ("public_key");--> statement-breakpoint
CREATE INDEX "gpu_jobs_status_created_idx" ON "gpu_jobs" USING btree ("status","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "images_user_name_tag_key" ON "images" USING btree ("user_id","name","tag");--> statement-breakpoint
CREATE INDEX "images_name_public_idx" ON "images" USING btree ("name","public");--> statement-breakpoint
CREATE INDEX "instance_audit_ts_idx" ON "instance_audit" USING btree ("verified_at","deleted_at");--> statement-breakpoint
CREATE INDEX "instance_audit_miner_idx" ON "instance_audit" USING btree ("miner_hotkey");--> statement-breakpoint
CREATE UNIQUE INDEX "instance_nodes_node_key" ON "instance_nodes" USING btree ("node_id");--> statement-breakpoint
CREATE UNIQUE INDEX "instances_host_port_key" ON "instances" USING btree ("host","port");--> statement-breakpoint
CREATE INDEX "instances_chute_state_idx" ON "instances" USING btree ("chute_id","active","verified");--> statement-breakpoint
CREATE INDEX "instances_miner_idx" ON "instances" USING btree ("miner_hotkey");--> statement-breakpoint
CREATE INDEX "invocations_started_chute_idx" ON "invocations" USING btree ("started_at","chute_id");--> statement-breakpoint
CREATE INDEX "invocations_parent_idx" ON "invocations" USING btree ("parent_invocation_id");--> statement-breakpoint
CREATE INDEX "invocations_user_started_idx" ON "invocations" USING btree ("user_id","started_at");--> statement-breakpoint
CREATE INDEX "invocations_miner_started_idx" ON "invocations" USING btree ("miner_hotkey","started_at");--> statement-breakpoint
CREATE INDEX "metagraph_nodes_netuid_uid_idx" ON "metagraph_nodes" USING btree ("netuid","node_id");--> statement-breakpoint
CREATE INDEX "nodes_miner_idx" ON "nodes" USING btree ("miner_hotkey");--> statement-breakpoint
CREATE UNIQUE INDEX "payments_block_extrinsic_event_key" ON "payments" USING btree ("block","extrinsic_index","event_index");--> statement-breakpoint
CREATE INDEX "payments_user_created_idx" ON "payments" USING btree ("user_id","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "users_username_key" ON "users" USING btree ("username");--> statement-breakpoint
CREATE UNIQUE INDEX "users_hotkey_key" ON "users" USING btree ("hotkey");--> statement-breakpoint
CREATE UNIQUE INDEX "users_fingerprint_hash_key" ON "users" USING btree ("fingerprint_hash");--> statement-breakpoint
CREATE UNIQUE INDEX "users_payment_address_key" ON "users" USING btree ("payment_address");--> statement-breakpoint
CREATE UNIQUE INDEX "users_developer_payment_address_key" ON "users" USING btree ("developer_payment_address");--> statement-breakpoint
CREATE UNIQUE INDEX "users_validator_hotkey_key" ON "users" USING btree ("validator_hotkey");--> statement-breakpoint
CREATE UNIQUE INDEX "users_subnet_owner_hotkey_key" ON "users" USING btree ("subnet_owner_hotkey");--> statement-breakpoint
CREATE UNIQUE INDEX "wallets_address_key" ON "wallets" USING btree ("address");--> statement-breakpoint
-- Weekly partitions of "invocations", named invocations_p<ISO year>_<ISO week> and bounded
-- by Monday 00:00 UTC. Creating one is idempotent and safe under concurrency (advisory lock).
CREATE OR REPLACE FUNCTION ensure_invocation_partition(at_time timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  week_start timestamptz := date_trunc('week', at_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
  week_end timestamptz := week_start + interval '1 week';
  partition_name text := 'invocations_p' || to_char(week_start AT TIME ZONE 'UTC', 'IYYY_IW');
BEGIN
  IF to_regclass(partition_name) IS NULL THEN
    PERFORM pg_advisory_xact_lock(hashtext(partition_name));
    IF to_regclass(partition_name) IS NULL THEN
      EXECUTE format(
        'CREATE TABLE %I PARTITION OF invocations FOR VALUES FROM (%L) TO (%L)',
        partition_name, week_start, week_end
      );
    END IF;
  END IF;
  RETURN partition_name;
END;
$$;
--> statement-breakpoint
SELECT ensure_invocation_partition(now() + make_interval(weeks => w)) FROM generate_series(-1, 4) AS w;
