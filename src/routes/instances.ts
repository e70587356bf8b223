/**
 * @module `/instances/{chute_id}/…`: a miner announces an instance (body-signed, 202),
 * activates it (`PATCH`, body `{"active": true}`: starts its one verification and reports
 * `verified`), and deletes it (purpose `instances`). Upstream's paths and status codes
 * (upstream-miner-protocol.md §4); the session key is never in a response.
 */
import { Hono } from "hono";
import { type MinerEnv, requireMiner } from "../lib/auth.ts";
import { jsonBody, pathParams } from "../lib/validation.ts";
import {
  activateInstanceSchema,
  announceInstanceSchema,
  chuteIdParam,
  instanceParams,
} from "../schemas/miner-plane.ts";
import { activateInstance, announceInstance, deleteInstance } from "../services/instances.ts";
import { planeDeps } from "./miner-plane.ts";

export const instancesRoutes = new Hono<MinerEnv>();

for (const path of ["/instances/:chute_id", "/instances/:chute_id/"]) {
  instancesRoutes.post(path, requireMiner(), async (c) => {
    const { chute_id } = pathParams(c, chuteIdParam);
    const body = await jsonBody(c, announceInstanceSchema);
    return c.json(await announceInstance(planeDeps(c), c.var.miner.hotkey, chute_id, body), 202);
  });
}

instancesRoutes
  .patch("/instances/:chute_id/:instance_id", requireMiner(), async (c) => {
    const { chute_id, instance_id } = pathParams(c, instanceParams);
    await jsonBody(c, activateInstanceSchema);
    return c.json(await activateInstance(planeDeps(c), c.var.miner.hotkey, chute_id, instance_id));
  })
  .delete("/instances/:chute_id/:instance_id", requireMiner({ purpose: "instances" }), async (c) => {
    const { chute_id, instance_id } = pathParams(c, instanceParams);
    await deleteInstance(planeDeps(c), c.var.miner.hotkey, chute_id, instance_id);
    return c.json({ instance_id, deleted: true });
  });
