/**
 * @module What happens around a build's state changes besides the database: its log (the
 * `BuildLog` Durable Object of the image, then the R2 copy) and the miners' event.
 *
 * Every change of an image's build state publishes `image_updated {image_id, status}`
 * with upstream's status string (`building`, `built and pushed`, `error: …`, and
 * `pending build` when a dead builder's job is queued again). Miners pull an image once
 * they see `built and pushed` (the upload's own `image_created` says `pending build`).
 */
import type { Config } from "../env.ts";
import type { Logger } from "../lib/log.ts";
import type { BuildTarget, ReapedBuild } from "./builds.ts";
import { imageObjectKeys, imageStatusLabel } from "./images.ts";
import { publishMinerEvent } from "./miner-events.ts";

export interface BuildLogDeps {
  config: Pick<Config, "BUILD_LOGS" | "MINER_HUB">;
  log: Logger;
}

/** The log object of an image's build. */
export function buildLog(config: Pick<Config, "BUILD_LOGS">, imageId: string) {
  return config.BUILD_LOGS.get(config.BUILD_LOGS.idFromName(imageId));
}

/** A builder claimed the build: the log says so, miners see `building`. */
export async function buildStarted(deps: BuildLogDeps, target: BuildTarget, attempt: number, builderName: string) {
  await buildLog(deps.config, target.imageId).begin(
    attempt,
    `build of ${target.username}/${target.name}:${target.tag} started on builder ${builderName} (attempt ${attempt})`,
  );
  await publishMinerEvent(deps, { reason: "image_updated", data: { image_id: target.imageId, status: "building" } });
}

/**
 * The build is over (`built`, or `error` with `message`): the final line, the log stored
 * in R2 and `DONE` to every reader, then the event. Safe to repeat.
 */
export async function buildEnded(
  deps: BuildLogDeps,
  target: BuildTarget,
  status: "built" | "error",
  message: string,
): Promise<void> {
  const final =
    status === "built"
      ? { log_type: "stdout" as const, log: `built and pushed ${target.username}/${target.name}:${target.tag}` }
      : { log_type: "stderr" as const, log: `build failed: ${message}` };
  await buildLog(deps.config, target.imageId).finish(imageObjectKeys(target.userId, target.imageId).log, final);
  const label = imageStatusLabel(status, status === "error" ? message : null);
  await publishMinerEvent(deps, { reason: "image_updated", data: { image_id: target.imageId, status: label } });
}

/** Applies what the reaper did: re-queued builds say why in their log, failed ones end. */
export async function settleReaped(deps: BuildLogDeps, reaped: ReapedBuild[]): Promise<void> {
  for (const build of reaped) {
    if (build.outcome === "failed") {
      await buildEnded(deps, build, "error", build.message);
    } else {
      await buildLog(deps.config, build.imageId).note({ log_type: "stderr", log: build.message });
      await publishMinerEvent(deps, {
        reason: "image_updated",
        data: { image_id: build.imageId, status: imageStatusLabel("pending", null) },
      });
    }
  }
}
