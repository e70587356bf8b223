/**
 * @module `npm run builder:register -- --name NAME --public-key HEX [--replace]`: registers
 * an image builder's Ed25519 public key in the database at DATABASE_URL and prints its
 * builder_id (the builder's BUILDER_ID). Operators with database access use this; admins
 * can use `POST /builders` instead.
 */
import { parseArgs } from "node:util";
import { check } from "../../src/lib/validation.ts";
import { registerBuilderSchema } from "../../src/schemas/builders.ts";
import { registerBuilder } from "../../src/services/builders.ts";
import { withDatabase } from "../dev/database.ts";
import { redact } from "../dev/services.ts";

const { values } = parseArgs({
  options: { name: { type: "string" }, "public-key": { type: "string" }, replace: { type: "boolean", default: false } },
});
const url = process.env.DATABASE_URL;
try {
  if (!url) throw new Error("DATABASE_URL is not set");
  const input = check(registerBuilderSchema, { name: values.name, public_key: values["public-key"] }, "args");
  const builder = await withDatabase(url, (db) =>
    registerBuilder(db, { name: input.name, publicKey: input.public_key, replace: values.replace }),
  );
  console.log(JSON.stringify({ builder_id: builder.builderId, name: builder.name, public_key: builder.publicKey }));
  console.error(`registered builder ${builder.name} in ${redact(url)}: set BUILDER_ID=${builder.builderId}`);
} catch (error) {
  const detail = (error as { errors?: { loc: unknown[]; msg: string }[] }).errors;
  console.error(`builder:register failed: ${(error as Error).message}`);
  for (const issue of detail ?? []) console.error(`  ${issue.loc.join(".")}: ${issue.msg}`);
  process.exit(1);
}
