/**
 * @module Host-first dispatch: which part of the platform a request is for, decided by
 * the hostname in the request URL (never the Host header: workerd and the test pool
 * deliver requests whose URL carries the host and whose headers may not).
 *
 * Under `BASE_DOMAIN` (e.g. `chutes.ai`, or `localhost` in dev):
 * `api.` REST · `llm.` OpenAI-compatible · `socket.`/`ws.` miner socket · `events.` public
 * feed · `registry.` OCI registry · `{slug}.` a chute. The apex, and in development bare
 * IPs and `localhost`, serve the API too (Node's resolver cannot resolve `api.localhost`).
 */

export type HostKind =
  | { kind: "api" }
  | { kind: "llm" }
  | { kind: "socket" }
  | { kind: "events" }
  | { kind: "registry" }
  | { kind: "chute"; slug: string }
  | { kind: "unknown" };

const FIXED = new Map<string, HostKind>([
  ["api", { kind: "api" }],
  ["llm", { kind: "llm" }],
  ["socket", { kind: "socket" }],
  ["ws", { kind: "socket" }],
  ["events", { kind: "events" }],
  ["registry", { kind: "registry" }],
]);

/** Labels that name a part of the platform, which no chute slug may take. */
export const FIXED_HOST_LABELS: readonly string[] = [...FIXED.keys()];

/** A DNS label a chute slug can be: lower-case letters, digits and inner hyphens. */
export const SLUG_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

export interface ClassifyOptions {
  baseDomain: string;
  /** Answer the API on bare IPs and `localhost` (development and tests only). */
  loopbackIsApi: boolean;
}

/**
 * `classifyHost` for a whole request URL. One addition, development only: on a bare
 * loopback host, paths under `/v2` are the registry's. Go's resolver (buildah, skopeo,
 * containerd) cannot resolve `registry.localhost`, so local tools reach the registry
 * front at `127.0.0.1:{port}/v2/…`; the API has no `/v2` routes.
 */
export function classifyUrl(url: URL, options: ClassifyOptions): HostKind {
  const kind = classifyHost(url.hostname, options);
  const host = url.hostname.toLowerCase();
  const bareLoopback = host === "localhost" || IPV4.test(host) || host.startsWith("[");
  if (kind.kind === "api" && options.loopbackIsApi && bareLoopback && /^\/v2(?:\/|$)/.test(url.pathname)) {
    return { kind: "registry" };
  }
  return kind;
}

export function classifyHost(hostname: string, options: ClassifyOptions): HostKind {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  const base = options.baseDomain;
  if (host === base) return { kind: "api" };
  if (options.loopbackIsApi && (host === "localhost" || IPV4.test(host) || host.startsWith("["))) {
    return { kind: "api" };
  }
  if (!host.endsWith(`.${base}`)) return { kind: "unknown" };
  const label = host.slice(0, -(base.length + 1));
  const fixed = FIXED.get(label);
  if (fixed) return fixed;
  if (SLUG_LABEL.test(label)) return { kind: "chute", slug: label };
  return { kind: "unknown" };
}
