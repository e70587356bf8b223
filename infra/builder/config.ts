/**
 * @module The builder's configuration, from the environment only (systemd, containers and
 * `npm start` all set variables), validated once at start with zod.
 */
import { z } from "zod";

const bool = z.enum(["true", "false", "1", "0"]).transform((value) => value === "true" || value === "1");

export const configSchema = z.object({
  /** Base URL of the API host, e.g. https://api.chutes.example. */
  CHUTES_API_URL: z.url({ protocol: /^https?$/ }).transform((url) => url.replace(/\/+$/, "")),
  /** The builder_id the API registered this builder's public key under. */
  BUILDER_ID: z.uuid(),
  /** The Ed25519 private key, PKCS#8 PEM (`node infra/builder/main.ts keygen FILE` writes one). */
  BUILDER_KEY_FILE: z.string().min(1),
  /** The registry host miners pull from, as it appears in image names: `registry.chutes.example`. */
  BUILDER_IMAGE_REGISTRY: z.string().regex(/^[a-z0-9.-]+(?::\d+)?$/, { message: "must be host or host:port" }),
  /**
   * Where images are pushed: the registry front (default, with the build's push token) or
   * the origin directly on a private network (layers over the Workers body limit).
   */
  BUILDER_PUSH_REGISTRY: z
    .string()
    .regex(/^[a-z0-9.-]+(?::\d+)?$/, { message: "must be host or host:port" })
    .optional(),
  /** Verify TLS on push (off only for a plain-HTTP registry on loopback). */
  BUILDER_PUSH_TLS_VERIFY: bool.default(true),
  /** buildah's storage driver: `vfs` works anywhere; `overlay` is faster where the kernel allows it. */
  BUILDER_STORAGE_DRIVER: z.enum(["vfs", "overlay"]).default("vfs"),
  /** buildah's `--root` and `--runroot` (default: buildah's own). */
  BUILDER_STORAGE_ROOT: z.string().min(1).optional(),
  BUILDER_RUN_ROOT: z.string().min(1).optional(),
  /** `chroot` needs no user namespaces; `oci` runs RUN steps in runc. */
  BUILDER_ISOLATION: z.enum(["chroot", "oci", "rootless"]).default("chroot"),
  /** Scratch space for contexts (a directory per build, removed after it). */
  BUILDER_WORK_DIR: z.string().min(1).optional(),
  /** Most bytes a context may unpack to, and most entries. */
  BUILDER_MAX_CONTEXT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(2 * 1024 * 1024 * 1024),
  BUILDER_MAX_CONTEXT_ENTRIES: z.coerce.number().int().min(1).default(20_000),
  /** The push may take this long after the build. */
  BUILDER_PUSH_TIMEOUT_S: z.coerce.number().int().min(10).default(1800),
  BUILDER_CLAIM_WAIT_MS: z.coerce.number().int().min(0).max(25_000).default(20_000),
  BUILDER_BUILDAH: z.string().min(1).default("buildah"),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
});

export type BuilderConfig = z.output<typeof configSchema>;

export function loadConfig(env: NodeJS.ProcessEnv): BuilderConfig {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join(".")}: ${issue.message}`);
    throw new Error(`invalid builder configuration:\n${lines.join("\n")}`);
  }
  return parsed.data;
}
