/**
 * @module Stopping the child processes the launcher starts (GPU agent, builder, registry):
 * SIGTERM, a few seconds to exit, then SIGKILL.
 */
import type { ChildProcess } from "node:child_process";

export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, graceMs))]);
  child.kill("SIGKILL");
}
