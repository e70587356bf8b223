ALTER TABLE "nodes" ADD COLUMN "verification_task" text;--> statement-breakpoint
ALTER TABLE "nodes" ADD COLUMN "verification_started_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "nodes_task_idx" ON "nodes" USING btree ("verification_task");