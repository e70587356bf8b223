/**
 * @module buildah, run as a child process: every stdout and stderr line handed on as it
 * comes, a time limit that kills the whole process group (buildah's RUN steps are its
 * children), and an abort signal for a build whose lease was lost.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { BuilderConfig } from "./config.ts";

export interface RunOutcome {
  code: number | null;
  timedOut: boolean;
  aborted: boolean;
  /** The last stderr lines, for the error message. */
  lastErrors: string[];
}

export interface RunOptions {
  timeoutMs: number;
  signal: AbortSignal;
  onLine(type: "stdout" | "stderr", line: string): void;
}

/** Global flags: the storage driver and where buildah keeps its images. */
export function storageArgs(config: BuilderConfig): string[] {
  const args = ["--storage-driver", config.BUILDER_STORAGE_DRIVER];
  if (config.BUILDER_STORAGE_ROOT) args.push("--root", config.BUILDER_STORAGE_ROOT);
  if (config.BUILDER_RUN_ROOT) args.push("--runroot", config.BUILDER_RUN_ROOT);
  return args;
}

export function runBuildah(config: BuilderConfig, args: string[], options: RunOptions): Promise<RunOutcome> {
  const child = spawn(config.BUILDER_BUILDAH, [...storageArgs(config), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    env: { ...process.env, BUILDAH_ISOLATION: config.BUILDER_ISOLATION },
  });
  const lastErrors: string[] = [];
  let timedOut = false;
  let aborted = false;
  const kill = () => {
    try {
      if (child.pid) process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, options.timeoutMs);
  const onAbort = () => {
    aborted = true;
    kill();
  };
  options.signal.addEventListener("abort", onAbort);
  const streams = (["stdout", "stderr"] as const).map((type) => {
    const stream = child[type];
    if (!stream) return Promise.resolve();
    const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
    lines.on("line", (line) => {
      if (type === "stderr" && line.trim()) {
        lastErrors.push(line);
        if (lastErrors.length > 5) lastErrors.shift();
      }
      options.onLine(type, line);
    });
    return new Promise<void>((resolve) => lines.once("close", () => resolve()));
  });
  return new Promise((resolve) => {
    child.once("error", (error) => {
      lastErrors.push(`could not run ${config.BUILDER_BUILDAH}: ${error.message}`);
    });
    child.once("close", async (code) => {
      clearTimeout(timer);
      options.signal.removeEventListener("abort", onAbort);
      await Promise.all(streams);
      resolve({ code, timedOut, aborted, lastErrors });
    });
  });
}
