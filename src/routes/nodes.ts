/**
 * @module `/nodes`: a miner registers a server's GPUs (`POST /nodes/`, body-signed, 202
 * with the task id), polls their verification (`GET /nodes/verification_status`, purpose
 * `graval`) and deletes one (`DELETE /nodes/{uuid}`, purpose `nodes`); anyone reads the
 * supported-GPU table and the public inventory. Upstream's paths and shapes
 * (upstream-miner-protocol.md §3), answered with and without the trailing slash.
 */
import { Hono } from "hono";
import { type MinerEnv, requireMiner } from "../lib/auth.ts";
import { jsonBody, pathParams, queryParams } from "../lib/validation.ts";
import { nodeIdParam, registerNodesSchema, verificationStatusQuery } from "../schemas/miner-plane.ts";
import { deleteNode, nodeInventory, registerNodes, supportedGpus, verificationStatus } from "../services/nodes.ts";
import { planeDeps } from "./miner-plane.ts";

export const nodesRoutes = new Hono<MinerEnv>()
  .get("/nodes/supported", (c) => c.json(supportedGpus()))
  .get("/nodes", async (c) => c.json(await nodeInventory(c.var.deps.db)))
  .get("/nodes/", async (c) => c.json(await nodeInventory(c.var.deps.db)))
  .get("/nodes/verification_status", requireMiner({ purpose: "graval" }), async (c) => {
    const { task_id } = queryParams(c, verificationStatusQuery);
    return c.json(await verificationStatus(c.var.deps.db, c.var.miner.hotkey, task_id));
  });

for (const path of ["/nodes", "/nodes/"]) {
  nodesRoutes.post(path, requireMiner(), async (c) => {
    const body = await jsonBody(c, registerNodesSchema);
    return c.json(await registerNodes(planeDeps(c), c.var.miner.hotkey, body.nodes), 202);
  });
}

nodesRoutes.delete("/nodes/:node_id", requireMiner({ purpose: "nodes" }), async (c) => {
  const { node_id } = pathParams(c, nodeIdParam);
  await deleteNode(planeDeps(c), c.var.miner.hotkey, node_id);
  return c.json({ node_id, deleted: true });
});
