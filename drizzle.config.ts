/**
 * @module drizzle-kit configuration: the schema in src/db/schema.ts generates SQL
 * migrations into migrations/ (`npm run db:generate`); they are applied by
 * `npm run db:migrate` and by `npm start`.
 */
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./src/db/schema.ts",
  out: "./migrations",
  dbCredentials: { url: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres" },
  migrations: { schema: "drizzle" },
  strict: true,
});
