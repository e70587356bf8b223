/**
 * @module Reading large results with flat memory: a server-side cursor fetched in batches
 * over one connection, with the next batch requested while the caller works on the
 * current one. drizzle builds whole result sets as objects, so the streaming paths (the
 * hourly export, `/invocations/exports/recent`) use the driver underneath in array mode.
 *
 * `SqlClient` is the slice of a node-postgres-style connection they need; Neon's
 * `PoolClient` (the Worker) and `pg.Client` (Node: the benchmark) both fit. A cursor only
 * lives inside a transaction, which the caller opens on the same connection.
 */

export interface SqlClient {
  query(config: { text: string; values?: unknown[]; rowMode?: "array" }): Promise<{ rows: unknown[] }>;
}

/** `DECLARE name NO SCROLL CURSOR FOR <text>` with bound parameters. */
export async function declareCursor(client: SqlClient, name: string, text: string, values: unknown[]): Promise<void> {
  await client.query({ text: `DECLARE ${name} NO SCROLL CURSOR FOR ${text}`, values });
}

/** Batches of array-mode rows until the cursor is exhausted; one FETCH ahead of the caller. */
export async function* cursorBatches(client: SqlClient, name: string, size: number): AsyncGenerator<unknown[][]> {
  const fetch = () =>
    client.query({ text: `FETCH ${size} FROM ${name}`, rowMode: "array" }).then((r) => r.rows as unknown[][]);
  let next = fetch();
  for (;;) {
    const rows = await next;
    if (rows.length === 0) return;
    next = rows.length < size ? Promise.resolve([]) : fetch();
    // Awaited on the next turn; until then a failure must not count as unhandled.
    next.catch(() => {});
    yield rows;
  }
}
