/**
 * @module Who counts as a miner: a hotkey registered on the configured subnet, per the
 * `metagraph_nodes` mirror (kept by the metagraph sync). Every miner route and the miner
 * socket check this after verifying the hotkey's signature.
 */
import { and, eq } from "drizzle-orm";
import { metagraphNodes } from "../db/schema.ts";
import type { AnyDatabase } from "../db/types.ts";

export async function isRegisteredMiner(db: AnyDatabase, hotkey: string, netuid: number): Promise<boolean> {
  const rows = await db
    .select({ hotkey: metagraphNodes.hotkey })
    .from(metagraphNodes)
    .where(and(eq(metagraphNodes.hotkey, hotkey), eq(metagraphNodes.netuid, netuid)))
    .limit(1);
  return rows.length > 0;
}
