/**
 * @module One build, start to end, and the loop that claims them (one at a time, as
 * upstream's forge): fetch the context and the Dockerfile through the API, extract the
 * context safely, `buildah build`, `buildah push` with the build's push token, stream every
 * line to the API, heartbeat the lease, and post the result. Only a successful push is
 * reported `built`; everything else is an `error` with a sentence saying what failed.
 * A lost lease (the API re-queued the build) stops the build and posts nothing.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Logger } from "../../src/lib/log.ts";
import { errorFields } from "../../src/lib/log.ts";
import { PermanentError } from "../../src/lib/service-client.ts";
import type { BuilderApi, BuildResult, ClaimedBuild } from "./api.ts";
import { runBuildah } from "./buildah.ts";
import type { BuilderConfig } from "./config.ts";
import { LogStream } from "./log-stream.ts";
import { ContextError, extractContext } from "./zip.ts";

/** Image name as miners pull it. */
export const imageRef = (config: BuilderConfig, job: ClaimedBuild) =>
  `${config.BUILDER_IMAGE_REGISTRY}/${job.repository}:${job.tag}`;

class BuildFailure extends Error {}

export async function runBuild(api: BuilderApi, config: BuilderConfig, job: ClaimedBuild, log: Logger): Promise<void> {
  const logs = new LogStream((seq, lines) => api.logs(job.image_id, job.attempt, seq, lines));
  const say = (text: string, type: "stdout" | "stderr" = "stdout") => logs.push({ log_type: type, log: text });
  const lost = new AbortController();
  const heartbeat = setInterval(
    () =>
      api.heartbeat(job.image_id).catch((error: unknown) => {
        if (error instanceof PermanentError) {
          log.warn("build lease lost; stopping", { image_id: job.image_id, ...errorFields(error) });
          lost.abort();
        }
      }),
    Math.max(1000, Math.floor(job.lease_ms / 3)),
  );
  const base = config.BUILDER_WORK_DIR ?? tmpdir();
  mkdirSync(base, { recursive: true });
  const work = mkdtempSync(path.join(base, "chutes-build-"));
  const ref = imageRef(config, job);
  let result: BuildResult;
  try {
    const deadline = Date.parse(job.deadline_at);
    const remaining = () => Math.max(1000, deadline - Date.now() - 5_000);
    const zip = await api.input(job.image_id, "context");
    const dockerfile = await api.input(job.image_id, "dockerfile");
    const contextDir = path.join(work, "context");
    mkdirSync(contextDir);
    let files: number;
    try {
      files = extractContext(zip, contextDir, {
        maxBytes: config.BUILDER_MAX_CONTEXT_BYTES,
        maxEntries: config.BUILDER_MAX_CONTEXT_ENTRIES,
      });
    } catch (error) {
      if (error instanceof ContextError) throw new BuildFailure(error.message);
      throw error;
    }
    const dockerfilePath = path.join(work, "Dockerfile");
    writeFileSync(dockerfilePath, dockerfile);
    say(`context: ${files} files; building ${ref}`);
    const onLine = (type: "stdout" | "stderr", line: string) => say(line, type);
    const built = await runBuildah(
      config,
      [
        "build",
        "--isolation",
        config.BUILDER_ISOLATION,
        "--format",
        "docker",
        "-f",
        dockerfilePath,
        "-t",
        ref,
        contextDir,
      ],
      { timeoutMs: remaining(), signal: lost.signal, onLine },
    );
    if (built.aborted) return;
    if (built.timedOut) throw new BuildFailure(`the build timed out (deadline ${job.deadline_at})`);
    if (built.code !== 0) {
      throw new BuildFailure(
        `the Dockerfile failed to build (buildah exited ${built.code}): ${built.lastErrors.at(-1) ?? "no error output"}`,
      );
    }
    const destination = `docker://${config.BUILDER_PUSH_REGISTRY ?? config.BUILDER_IMAGE_REGISTRY}/${job.repository}:${job.tag}`;
    say(`pushing ${ref}`);
    const pushed = await runBuildah(
      config,
      [
        "push",
        `--tls-verify=${config.BUILDER_PUSH_TLS_VERIFY}`,
        "--creds",
        `builder:${job.push_token}`,
        ref,
        destination,
      ],
      { timeoutMs: Math.min(remaining(), config.BUILDER_PUSH_TIMEOUT_S * 1000), signal: lost.signal, onLine },
    );
    if (pushed.aborted) return;
    if (pushed.timedOut) throw new BuildFailure("the push to the registry timed out");
    if (pushed.code !== 0) {
      throw new BuildFailure(
        `the push to the registry failed (buildah exited ${pushed.code}): ${pushed.lastErrors.at(-1) ?? "no error output"}`,
      );
    }
    result = { status: "built" };
  } catch (error) {
    if (lost.signal.aborted) return;
    const message =
      error instanceof BuildFailure
        ? error.message
        : `the builder failed: ${(error as Error).message ?? String(error)}`;
    if (!(error instanceof BuildFailure))
      log.error("build failed unexpectedly", { image_id: job.image_id, ...errorFields(error) });
    say(message, "stderr");
    result = { status: "error", error: message };
  } finally {
    clearInterval(heartbeat);
    rmSync(work, { recursive: true, force: true });
    // Keep only base images in buildah's storage: built images are in the registry now.
    await runBuildah(config, ["rmi", "-f", ref], {
      timeoutMs: 60_000,
      signal: new AbortController().signal,
      onLine: () => {},
    }).catch(() => undefined);
  }
  if (lost.signal.aborted) return;
  await logs.flush();
  await api.result(job.image_id, job.attempt, result);
  log.info("build finished", { image_id: job.image_id, status: result.status });
}

/** Claims and runs builds until `signal` aborts. */
export async function builderLoop(api: BuilderApi, config: BuilderConfig, log: Logger, signal: AbortSignal) {
  let failures = 0;
  while (!signal.aborted) {
    try {
      const job = await api.claim(config.BUILDER_CLAIM_WAIT_MS);
      failures = 0;
      if (!job) continue;
      log.info("build claimed", { image_id: job.image_id, attempt: job.attempt, repository: job.repository });
      await runBuild(api, config, job, log);
    } catch (error) {
      failures++;
      log.warn("claim or build failed", errorFields(error));
      await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 1000 * 2 ** Math.min(failures, 5))));
    }
  }
}
