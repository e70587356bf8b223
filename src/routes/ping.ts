/**
 * @module `GET /ping` on the API host: liveness that means something. It answers
 * `{"message":"pong"}` only when Postgres and Redis both answer; otherwise 503 naming
 * what is down (load balancers and `npm start` readiness checks rely on this).
 */
import { Hono } from "hono";
import type { AppEnv } from "../app.ts";
import { ApiError } from "../lib/errors.ts";
import { checkDependencies, downDependencies } from "../services/health.ts";

export const ping = new Hono<AppEnv>().get("/ping", async (c) => {
  const report = await checkDependencies(c.var.deps);
  const down = downDependencies(report);
  if (down.length > 0) {
    c.var.log.warn("dependency check failed", { report });
    throw new ApiError(
      "dependency_unavailable",
      `Unavailable: ${down.join(", ")} ${down.length > 1 ? "are" : "is"} down`,
      {
        headers: { "retry-after": "5" },
      },
    );
  }
  return c.json({ message: "pong" });
});
