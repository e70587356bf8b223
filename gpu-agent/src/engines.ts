/**
 * @module Where plans run: the CPU reference in a worker thread, or the CUDA sidecar
 * (gpu-agent/native, one process per GPU, JSON lines over stdin/stdout; see
 * docs/gpu-proof.md §11 for why a sidecar rather than an N-API addon).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { Worker } from "node:worker_threads";
import type { Executor, Plan, StateRoot } from "../../src/gpu-proof/engine.ts";
import { fromHex, toHex } from "../../src/lib/bytes.ts";

export interface Device {
  index: number;
  name: string;
  kind: "cpu" | "gpu";
  execute: Executor;
  close(): Promise<void>;
}

type Reply = { id: number; roots?: StateRoot[] | [number, number, string][]; error?: string };

/** Matches replies to requests by id over any message channel. */
function correlator(send: (id: number, plan: Plan) => void) {
  let next = 1;
  const pending = new Map<number, { resolve: (roots: StateRoot[]) => void; reject: (error: Error) => void }>();
  return {
    execute: (plan: Plan) =>
      new Promise<StateRoot[]>((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        send(id, plan);
      }),
    settle(reply: Reply, decode: (roots: NonNullable<Reply["roots"]>) => StateRoot[]) {
      const waiter = pending.get(reply.id);
      if (!waiter) return;
      pending.delete(reply.id);
      if (reply.error || !reply.roots) waiter.reject(new Error(reply.error ?? "no roots in the reply"));
      else waiter.resolve(decode(reply.roots));
    },
    failAll(error: Error) {
      for (const waiter of pending.values()) waiter.reject(error);
      pending.clear();
    },
  };
}

export function cpuDevice(index: number): Device {
  const worker = new Worker(new URL("./cpu-worker.ts", import.meta.url));
  const channel = correlator((id, plan) => worker.postMessage({ id, plan }));
  worker.on("message", (reply: Reply) => channel.settle(reply, (roots) => roots as StateRoot[]));
  worker.on("error", (error) => channel.failAll(error));
  return {
    index,
    name: `cpu-reference-${index}`,
    kind: "cpu",
    execute: channel.execute,
    close: () => worker.terminate().then(() => {}),
  };
}

/** What `chutes-gpu-proof list` reports per GPU. */
export interface SidecarDevice {
  index: number;
  name: string;
  uuid: string;
  memory: number;
  major: number;
  minor: number;
  processors: number;
  /** kHz. */
  clock_rate: number;
}

/** The GPUs the sidecar sees, or null when there is no sidecar binary or no GPU. */
export function listGpus(sidecar: string): Promise<SidecarDevice[] | null> {
  if (!existsSync(sidecar)) return Promise.resolve(null);
  return new Promise((resolve) => {
    execFile(sidecar, ["list"], { timeout: 30_000 }, (error, stdout) => {
      if (error) return resolve(null);
      try {
        const devices = JSON.parse(stdout) as SidecarDevice[];
        resolve(devices.length > 0 ? devices : null);
      } catch {
        resolve(null);
      }
    });
  });
}

export function gpuDevice(sidecar: string, gpu: SidecarDevice): Device {
  const child: ChildProcess = spawn(sidecar, ["serve", "--device", String(gpu.index)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const channel = correlator((id, plan) => {
    const steps = plan.steps.map((s) => [s.t, s.a, s.b]);
    child.stdin?.write(`${JSON.stringify({ id, n: plan.n, key: toHex(plan.key), init: plan.init, steps })}\n`);
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  lines.on("line", (line) => {
    const reply = JSON.parse(line) as Reply;
    channel.settle(reply, (roots) =>
      (roots as [number, number, string][]).map(([t, m, root]) => ({ t, m, root: fromHex(root) })),
    );
  });
  child.on("exit", (code) => channel.failAll(new Error(`the GPU sidecar for device ${gpu.index} exited (${code})`)));
  return {
    index: gpu.index,
    name: gpu.name,
    kind: "gpu",
    execute: channel.execute,
    close: async () => {
      child.stdin?.end();
      child.kill("SIGTERM");
    },
  };
}
