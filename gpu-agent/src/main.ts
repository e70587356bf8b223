/**
 * @module The GPU agent's entry point.
 *
 * `node src/main.ts` runs the agent (configuration from the environment, see config.ts):
 * pick the devices (the CUDA sidecar's GPUs, or CPU-reference workers), run the known-answer
 * self-test on each, serve /healthz and /metrics, and claim jobs only if the self-test passed.
 * `node src/main.ts keygen <file>` writes a new Ed25519 key and prints its public key.
 */
import { readFileSync } from "node:fs";
import { selfTest } from "../../src/gpu-proof/vectors.ts";
import { createLogger } from "../../src/lib/log.ts";
import { Agent, type SelfTestState } from "./agent.ts";
import { ApiClient } from "./api.ts";
import { AGENT_VERSION, loadConfig } from "./config.ts";
import { cpuDevice, type Device, gpuDevice, listGpus } from "./engines.ts";
import { generateKeyFile, loadSigningKey } from "./keys.ts";

async function devicesFor(config: ReturnType<typeof loadConfig>, log: ReturnType<typeof createLogger>) {
  if (config.GPU_AGENT_MODE !== "cpu") {
    const gpus = await listGpus(config.GPU_AGENT_SIDECAR);
    if (gpus) return gpus.map((gpu) => gpuDevice(config.GPU_AGENT_SIDECAR, gpu));
    if (config.GPU_AGENT_MODE === "gpu") {
      throw new Error(`GPU_AGENT_MODE=gpu but the sidecar at ${config.GPU_AGENT_SIDECAR} found no GPU`);
    }
    log.info("no GPU found (or no sidecar built): running the CPU reference", { sidecar: config.GPU_AGENT_SIDECAR });
  }
  return Array.from({ length: config.GPU_AGENT_CPU_WORKERS }, (_, i) => cpuDevice(i));
}

async function runSelfTests(devices: Device[]): Promise<SelfTestState> {
  const failures: string[] = [];
  for (const device of devices) {
    const report = await selfTest(device.execute);
    failures.push(...report.failures.map((f) => `device ${device.index} (${device.name}): ${f}`));
  }
  return { passed: failures.length === 0, failures };
}

async function main(): Promise<void> {
  if (process.argv[2] === "keygen") {
    const path = process.argv[3];
    if (!path) throw new Error("usage: node src/main.ts keygen <private-key-file>");
    console.log(generateKeyFile(path));
    return;
  }
  const config = loadConfig(process.env);
  const log = createLogger(config.LOG_LEVEL, { service: "gpu-agent", agent_id: config.GPU_AGENT_ID });
  const key = await loadSigningKey(readFileSync(config.GPU_AGENT_KEY_FILE, "utf8"));
  const devices = await devicesFor(config, log);
  const state = await runSelfTests(devices);
  log.info("self-test", { passed: state.passed, devices: devices.length, kind: devices[0]?.kind });
  const agent = new Agent(config, new ApiClient(config.CHUTES_API_URL, config.GPU_AGENT_ID, key), devices, log, state);
  const address = await agent.listen();
  log.info("gpu agent up", {
    version: AGENT_VERSION,
    api: config.CHUTES_API_URL,
    health: `http://${address.address}:${address.port}/healthz`,
  });
  agent.start();
  const shutdown = () => {
    log.info("stopping");
    void agent.stop().then(() => process.exit(0));
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
}

main().catch((error: unknown) => {
  console.error(`gpu-agent: ${(error as Error).message}`);
  process.exit(1);
});
