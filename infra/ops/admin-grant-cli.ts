/**
 * @module `npm run admin:grant -- [--revoke] <username> <permission>...`: grants (or
 * revokes) permission bits on the database at DATABASE_URL, e.g. the first admin:
 * `DATABASE_URL=… npm run admin:grant -- alice admin`. Hotkey requests see the change at
 * once; requests made with an API key within the key cache's 60 s.
 */
import { redact } from "../dev/services.ts";
import { changePermissions, parseGrantArgs, UsageError } from "./permissions.ts";

const url = process.env.DATABASE_URL;
if (!url) {
  console.error("DATABASE_URL is not set: give the Postgres connection string of the platform.");
  process.exit(2);
}
try {
  const change = parseGrantArgs(process.argv.slice(2));
  const result = await changePermissions(url, change);
  if (!result) {
    console.error(`no user named ${change.username} in ${redact(url)}`);
    process.exit(1);
  }
  const now = result.permissions.length > 0 ? result.permissions.join(", ") : "no permissions";
  console.log(`${result.username} (${result.userId}) now has: ${now} (bitmask ${result.bitmask})`);
} catch (error) {
  console.error((error as Error).message);
  process.exit(error instanceof UsageError ? 2 : 1);
}
