CREATE TABLE "builders" (
	"builder_id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"public_key" text NOT NULL,
	"disabled" boolean DEFAULT false NOT NULL,
	"last_seen_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "image_builds" (
	"image_id" text PRIMARY KEY NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"builder_id" text,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer DEFAULT 2 NOT NULL,
	"lease_ms" integer DEFAULT 60000 NOT NULL,
	"lease_expires_at" timestamp with time zone,
	"deadline_at" timestamp with time zone,
	"push_token_hash" text,
	"claimed_at" timestamp with time zone,
	"completed_at" timestamp with time zone,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "image_builds" ADD CONSTRAINT "image_builds_image_id_images_image_id_fk" FOREIGN KEY ("image_id") REFERENCES "public"."images"("image_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "image_builds" ADD CONSTRAINT "image_builds_builder_id_builders_builder_id_fk" FOREIGN KEY ("builder_id") REFERENCES "public"."builders"("builder_id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "builders_name_key" ON "builders" USING btree ("name");--> statement-breakpoint
CREATE UNIQUE INDEX "builders_public_key_key" ON "builders" USING btree ("public_key");--> statement-breakpoint
CREATE INDEX "image_builds_status_created_idx" ON "image_builds" USING btree ("status","created_at");