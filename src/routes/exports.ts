/**
 * @module Auditors' downloads (public, unauthenticated, as upstream):
 * `GET /invocations/exports/{year}/{month}/{day}/{hour}.csv` and its signed
 * `….manifest.json`, streamed from R2 (the hour is the END of the window the file
 * covers), and `GET /invocations/exports/recent`, streamed from Postgres.
 */
import { Hono } from "hono";
import type { AppEnv } from "../app.ts";
import { ApiError } from "../lib/errors.ts";
import { queryParams } from "../lib/validation.ts";
import { recentQuery } from "../schemas/exports.ts";
import { parseExportPath, recentCsvStream } from "../services/exports.ts";

const CSV = "text/csv; charset=utf-8";

export const exportsRoutes = new Hono<AppEnv>()
  .get("/invocations/exports/recent", async (c) => {
    const query = queryParams(c, recentQuery);
    const { deps } = c.var;
    // The stream outlives the handler: it holds its own connection, which the request's
    // pool waits for before it ends.
    const client = await deps.db.$client.connect();
    const body = await recentCsvStream(client, { now: deps.now(), limit: query.limit, hotkey: query.hotkey }, (error) =>
      client.release(error),
    );
    return new Response(body, {
      headers: { "content-type": CSV, "content-disposition": 'attachment; filename="recent.csv"' },
    });
  })
  .get("/invocations/exports/:year/:month/:day/:file", async (c) => {
    const path = parseExportPath(
      { year: c.req.param("year"), month: c.req.param("month"), day: c.req.param("day"), file: c.req.param("file") },
      c.var.deps.now(),
    );
    if (!path.ok) throw new ApiError(path.status === 400 ? "bad_request" : "not_found", path.detail);
    const object = await c.var.deps.bucket.get(path.key);
    if (!object) {
      const h = path.hourEnd;
      throw new ApiError(
        "not_found",
        `Invocations export not found year=${h.getUTCFullYear()} month=${h.getUTCMonth() + 1} day=${h.getUTCDate()} hour=${h.getUTCHours()}`,
      );
    }
    return new Response(object.body, {
      headers: {
        "content-type": path.file === "csv" ? CSV : "application/json",
        "content-disposition": `attachment; filename="${path.filename}"`,
        "content-length": String(object.size),
        etag: object.httpEtag,
      },
    });
  });
