/**
 * @module Events for miners: the typed reasons and payloads the API publishes, and
 * `publishMinerEvent`, which hands one to the miner hub Durable Object over RPC. The hub
 * numbers it, keeps it for resuming sockets and delivers it to every authenticated miner
 * socket, or only to those of `recipients` (docs/protocols.md, "Miner socket").
 *
 * Payloads keep upstream's reason names and fields (upstream-miner-protocol.md §2.1), so
 * a miner's reconciler can read them as it read `miner_broadcast`; `data` is always an
 * object. Publishing happens after the change it reports is committed and never fails the
 * request: a miner that misses an event catches up on resume, or reconciles from the lists.
 */
import type { Config } from "../env.ts";
import { errorFields, type Logger } from "../lib/log.ts";

/** The one hub every miner connects to (`idFromName`). */
export const MINER_HUB_NAME = "miners";

export interface MinerEventData {
  chute_created: { chute_id: string; version: string };
  chute_updated: { chute_id: string; version: string; old_version: string };
  chute_deleted: { chute_id: string; version: string };
  /** An image was uploaded; `status` is upstream's string (`pending build` until builds exist). */
  image_created: { image_id: string; name: string; tag: string; username: string; status: string };
  /** Its build state changed (published by the builder). */
  image_updated: { image_id: string; status: string };
  image_deleted: { image_id: string };
  gpu_verified: { gpu_id: string; miner_hotkey: string };
  node_deleted: { node_id: string; miner_hotkey: string };
  instance_created: { instance_id: string; chute_id: string; miner_hotkey: string };
  instance_verified: { instance_id: string; miner_hotkey: string };
  /** `reason` (ours): why the validator removed it (`miner initialized` when the miner deleted it). */
  instance_deleted: { instance_id: string; chute_id: string; miner_hotkey: string; reason?: string };
  bounty_change: { chute_id: string; bounty: number };
}

export type MinerEventReason = keyof MinerEventData;

export type MinerEvent = {
  [R in MinerEventReason]: {
    reason: R;
    data: MinerEventData[R];
    /** Hotkeys to deliver to; absent: every connected miner. */
    recipients?: string[];
  };
}[MinerEventReason];

export interface PublishedEvent {
  seq: number;
  /** Sockets the frame was handed to. */
  delivered: number;
}

export interface PublishDeps {
  config: Pick<Config, "MINER_HUB">;
  log: Logger;
}

/** Publishes `event` to miners; null (and a warning in the log) when the hub cannot be reached. */
export async function publishMinerEvent(deps: PublishDeps, event: MinerEvent): Promise<PublishedEvent | null> {
  const hub = deps.config.MINER_HUB;
  try {
    return await hub.get(hub.idFromName(MINER_HUB_NAME)).publish(event);
  } catch (error) {
    deps.log.warn("miner event not published", { reason: event.reason, ...errorFields(error) });
    return null;
  }
}
