ALTER TABLE "export_manifests" ADD COLUMN "byte_length" bigint NOT NULL;--> statement-breakpoint
ALTER TABLE "score_runs" ADD COLUMN "netuid" integer NOT NULL;--> statement-breakpoint
ALTER TABLE "score_runs" ADD COLUMN "outcome" text NOT NULL;--> statement-breakpoint
CREATE INDEX "score_runs_netuid_created_idx" ON "score_runs" USING btree ("netuid","created_at");