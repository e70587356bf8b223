/**
 * @module `/miner/*`: the lists a miner's reconciler pulls (purpose `miner`), as upstream
 * sends them: `text/event-stream`, one JSON object per `data:` line (upstream-miner-protocol
 * §4.8). Chutes and images are the whole catalogue; nodes and instances are the caller's
 * own; metrics are per chute over the last hour. An empty list sends nothing, or
 * `data: NO_ITEMS` with `?explicit_null=true` (upstream HEAD's sentinel). Lists are always
 * complete (no paging): a truncated list makes miners tear down healthy deployments.
 */
import { and, eq, gte, sql } from "drizzle-orm";
import { type Context, Hono } from "hono";
import { chutes, images, instances, invocations, users } from "../db/schema.ts";
import { type MinerEnv, requireMiner } from "../lib/auth.ts";
import { ApiError } from "../lib/errors.ts";
import { queryParams } from "../lib/validation.ts";
import { minerListQuery } from "../schemas/miner-plane.ts";
import { COMPUTE_UNIT_HOURLY_USD } from "../services/gpus.ts";
import { minerInstances } from "../services/instances.ts";
import { minerNodes, nodeView } from "../services/nodes.ts";

/** The SSE list body: one `data: {json}` event per item (never split across lines). */
export function sseList(items: unknown[], explicitNull: boolean): Response {
  const lines = items.map((item) => `data: ${JSON.stringify(item)}\n\n`);
  if (lines.length === 0 && explicitNull) lines.push("data: NO_ITEMS\n\n");
  return new Response(lines.join(""), {
    headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store" },
  });
}

const chuteColumns = {
  chute_id: chutes.chuteId,
  name: chutes.name,
  slug: chutes.slug,
  tagline: chutes.tagline,
  readme: chutes.readme,
  image_id: chutes.imageId,
  public: chutes.public,
  standard_template: chutes.standardTemplate,
  cords: chutes.cords,
  node_selector: chutes.nodeSelector,
  code: chutes.code,
  filename: chutes.filename,
  ref_str: chutes.refStr,
  version: chutes.version,
  chutes_version: chutes.chutesVersion,
  created_at: chutes.createdAt,
  updated_at: chutes.updatedAt,
  user_id: chutes.userId,
  username: users.username,
  image_name: images.name,
  image_tag: images.tag,
};

type ChuteListRow = { [K in keyof typeof chuteColumns]: unknown } & {
  node_selector: { supported_gpus: string[] };
  username: string;
  image_name: string;
  image_tag: string;
};

/** Upstream's miner view of a chute: every column plus `supported_gpus` and `image` (`user/name:tag`). */
function minerChute(row: ChuteListRow) {
  const { image_name, image_tag, ...rest } = row;
  return {
    ...rest,
    supported_gpus: row.node_selector.supported_gpus,
    image: `${row.username}/${image_name}:${image_tag}`,
  };
}

const chuteQuery = (db: MinerEnv["Variables"]["deps"]["db"]) =>
  db
    .select(chuteColumns)
    .from(chutes)
    .innerJoin(users, eq(users.userId, chutes.userId))
    .innerJoin(images, eq(images.imageId, chutes.imageId));

export const minerRoutes = new Hono<MinerEnv>();
const miner = requireMiner({ purpose: "miner" });

const list = (path: string, items: (c: Context<MinerEnv>) => Promise<unknown[]>) => {
  for (const p of [path, `${path}/`]) {
    minerRoutes.get(p, miner, async (c) => {
      const { explicit_null } = queryParams(c, minerListQuery);
      return sseList(await items(c), explicit_null);
    });
  }
};

list("/miner/chutes", async (c) =>
  (await chuteQuery(c.var.deps.db).orderBy(chutes.createdAt)).map((row) => minerChute(row as ChuteListRow)),
);

list("/miner/images", async (c) =>
  c.var.deps.db
    .select({
      image_id: images.imageId,
      user_id: images.userId,
      username: users.username,
      name: images.name,
      tag: images.tag,
      public: images.public,
      status: images.status,
      chutes_version: images.chutesVersion,
      created_at: images.createdAt,
    })
    .from(images)
    .innerJoin(users, eq(users.userId, images.userId))
    .orderBy(images.createdAt),
);

list("/miner/nodes", async (c) => (await minerNodes(c.var.deps.db, c.var.miner.hotkey)).map(nodeView));

list("/miner/instances", async (c) => minerInstances(c.var.deps.db, c.var.miner.hotkey));

list("/miner/metrics", async (c) => {
  const db = c.var.deps.db;
  const end = c.var.deps.now();
  const start = new Date(end.getTime() - 3600_000);
  const usage = await db
    .select({
      chuteId: invocations.chuteId,
      total: sql<number>`count(*)::int`,
      computeTime: sql<number>`coalesce(sum(extract(epoch from (${invocations.completedAt} - ${invocations.startedAt}))), 0)::float8`,
      errors: sql<number>`count(*) filter (where ${invocations.errorMessage} is not null)::int`,
      usd: sql<number>`coalesce(sum(${invocations.costUsd}), 0)::float8`,
    })
    .from(invocations)
    .where(gte(invocations.startedAt, start))
    .groupBy(invocations.chuteId);
  const counts = await db
    .select({ chuteId: instances.chuteId, n: sql<number>`count(*)::int` })
    .from(instances)
    .where(and(eq(instances.active, true), eq(instances.verified, true)))
    .groupBy(instances.chuteId);
  const byChute = new Map(usage.map((row) => [row.chuteId, row]));
  const instanceCount = new Map(counts.map((row) => [row.chuteId, row.n]));
  const all = await db.select({ chuteId: chutes.chuteId, selector: chutes.nodeSelector }).from(chutes);
  return all.map(({ chuteId, selector }) => {
    const used = byChute.get(chuteId);
    return {
      chute_id: chuteId,
      start_date: start.toISOString(),
      end_date: end.toISOString(),
      total_invocations: used?.total ?? 0,
      total_compute_time: used?.computeTime ?? 0,
      error_count: used?.errors ?? 0,
      rate_limit_count: 0,
      total_usage_usd: used?.usd ?? 0,
      instance_count: instanceCount.get(chuteId) ?? 0,
      per_second_price_usd: (selector.compute_multiplier * COMPUTE_UNIT_HOURLY_USD) / 3600,
    };
  });
});

minerRoutes.get("/miner/chutes/:chute_id/:version", miner, async (c) => {
  const chuteId = c.req.param("chute_id");
  const version = c.req.param("version");
  const [row] = await chuteQuery(c.var.deps.db).where(and(eq(chutes.chuteId, chuteId), eq(chutes.version, version)));
  if (!row) throw new ApiError("not_found", `No chute ${chuteId} at version ${version}.`);
  return c.json(minerChute(row as ChuteListRow));
});
