ALTER TABLE "gpu_jobs" ADD COLUMN "lease_ms" integer DEFAULT 60000 NOT NULL;--> statement-breakpoint
ALTER TABLE "gpu_jobs" ADD COLUMN "claimed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "gpu_jobs" ADD COLUMN "completed_at" timestamp with time zone;