/**
 * @module `npm run db:migrate`: applies pending migrations to the database at
 * DATABASE_URL (Neon in production: use its direct, non-pooled connection string).
 * `npm start` does the same on every start.
 */
import { applyMigrations } from "./postgres.ts";
import { redact } from "./services.ts";

const url = process.env.DATABASE_URL;
if (!url) {
  console.error("DATABASE_URL is not set: give the Postgres connection string to migrate.");
  process.exit(2);
}
try {
  await applyMigrations(url);
  console.log(`migrations applied to ${redact(url)}`);
} catch (error) {
  console.error(`migration failed: ${(error as Error).message}`);
  process.exit(1);
}
