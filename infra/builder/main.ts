/**
 * @module The image builder's entry point (docs/protocols.md, "Image builder"; install
 * notes in infra/builder/README.md):
 *
 *   node infra/builder/main.ts keygen FILE   writes an Ed25519 key (mode 0600), prints its public key
 *   node infra/builder/main.ts               claims and runs builds until SIGTERM/SIGINT
 *
 * A build in progress when it is stopped is left to its lease: the API queues it again
 * once the lease lapses (or fails it after the last attempt).
 */
import { readFileSync } from "node:fs";
import { generateKeyFile, loadSigningKey } from "../../gpu-agent/src/keys.ts";
import { createLogger } from "../../src/lib/log.ts";
import { BuilderApi } from "./api.ts";
import { builderLoop } from "./builder.ts";
import { loadConfig } from "./config.ts";

if (process.argv[2] === "keygen") {
  const file = process.argv[3];
  if (!file) {
    console.error("usage: node infra/builder/main.ts keygen FILE");
    process.exit(2);
  }
  console.log(generateKeyFile(file));
  process.exit(0);
}

const config = loadConfig(process.env);
const log = createLogger(config.LOG_LEVEL, { service: "builder" });
const api = new BuilderApi(
  config.CHUTES_API_URL,
  config.BUILDER_ID,
  await loadSigningKey(readFileSync(config.BUILDER_KEY_FILE, "utf8")),
);
const stop = new AbortController();
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    log.info("stopping", { signal });
    stop.abort();
    // A long-poll or a build in flight is not waited for: its lease will lapse.
    process.exit(0);
  });
}
log.info("builder started", { api: config.CHUTES_API_URL, registry: config.BUILDER_IMAGE_REGISTRY });
await builderLoop(api, config, log, stop.signal);
