/**
 * @module The local image builder `npm start` (and the e2e tests) run: a fresh Ed25519 key
 * in a temporary directory, registered in the platform's database as `dev-builder`
 * (replacing the last run's key), and the real builder (infra/builder/) against the local
 * API. It pushes through the Worker's registry front at `127.0.0.1:{port}` (Go's resolver
 * cannot resolve `registry.localhost`; the dev front answers `/v2/` on loopback), with
 * buildah's vfs storage and chroot isolation, which need no privileges beyond root.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { generateKeyFile } from "../../gpu-agent/src/keys.ts";
import { registerBuilder } from "../../src/services/builders.ts";
import { stopChild } from "./children.ts";
import { withDatabase } from "./database.ts";

const BUILDER_MAIN = fileURLToPath(new URL("../builder/main.ts", import.meta.url));
export const DEV_BUILDER_NAME = "dev-builder";

export interface DevBuilder {
  builderId: string;
  stop(): Promise<void>;
}

export async function startDevBuilder(options: {
  port: number;
  databaseUrl: string;
  /** buildah's storage (vfs), kept between runs so base images are pulled once. */
  storageDir: string;
}): Promise<DevBuilder> {
  const dir = mkdtempSync(path.join(tmpdir(), "chutes-dev-builder-"));
  const keyFile = path.join(dir, "builder.pem");
  const publicKey = generateKeyFile(keyFile);
  mkdirSync(options.storageDir, { recursive: true });
  const builder = await withDatabase(options.databaseUrl, (db) =>
    registerBuilder(db, { name: DEV_BUILDER_NAME, publicKey, replace: true }),
  );
  const child: ChildProcess = spawn(process.execPath, [BUILDER_MAIN], {
    stdio: ["ignore", "inherit", "inherit"],
    env: {
      ...process.env,
      CHUTES_API_URL: `http://127.0.0.1:${options.port}`,
      BUILDER_ID: builder.builderId,
      BUILDER_KEY_FILE: keyFile,
      BUILDER_IMAGE_REGISTRY: `registry.localhost:${options.port}`,
      BUILDER_PUSH_REGISTRY: `127.0.0.1:${options.port}`,
      BUILDER_PUSH_TLS_VERIFY: "false",
      BUILDER_STORAGE_DRIVER: "vfs",
      BUILDER_ISOLATION: "chroot",
      BUILDER_STORAGE_ROOT: options.storageDir,
      BUILDER_RUN_ROOT: path.join(dir, "run"),
      BUILDER_WORK_DIR: path.join(dir, "work"),
      BUILDER_CLAIM_WAIT_MS: "20000",
      LOG_LEVEL: process.env.BUILDER_LOG_LEVEL ?? "warn",
    },
  });
  return {
    builderId: builder.builderId,
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
