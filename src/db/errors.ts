/**
 * @module Reading Postgres errors through drizzle: drizzle wraps driver errors in
 * `DrizzleQueryError`, whose message carries the query's parameters, and those can be
 * secrets (wallet ciphertexts, the pgcrypto key). Callers that map errors read the
 * driver's fields here, and anything re-thrown goes through `redactedDatabaseError`.
 */

interface DriverError {
  code?: unknown;
  constraint?: unknown;
  message?: unknown;
}

/** The driver's error under drizzle's wrapper (or the error itself). */
function driverError(error: unknown): DriverError | null {
  if (typeof error !== "object" || error === null) return null;
  const cause = (error as { cause?: unknown }).cause;
  if (typeof cause === "object" && cause !== null && "code" in cause) return cause as DriverError;
  return "code" in error ? (error as DriverError) : null;
}

/** The name of the unique constraint `error` violated (SQLSTATE 23505), or null. */
export function uniqueViolation(error: unknown): string | null {
  const driver = driverError(error);
  if (driver?.code !== "23505") return null;
  return typeof driver.constraint === "string" ? driver.constraint : "";
}

/** An error fit to log: the driver's code and message, never the query parameters. */
export function redactedDatabaseError(error: unknown): Error {
  const driver = driverError(error);
  if (driver) return new Error(`database error ${String(driver.code)}: ${String(driver.message)}`);
  if (typeof error === "object" && error !== null && "params" in error) {
    const cause = (error as { cause?: unknown }).cause;
    return new Error(`database query failed: ${cause instanceof Error ? cause.message : "no cause given"}`);
  }
  return error instanceof Error ? error : new Error(String(error));
}

/** Whether `error` is a foreign-key violation (SQLSTATE 23503): a row another one still references. */
export function foreignKeyViolation(error: unknown): boolean {
  return driverError(error)?.code === "23503";
}
