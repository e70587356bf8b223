/**
 * @module Which miner hosts the validator may call (upstream `is_valid_host`, minus its
 * gaps): an IP literal or a DNS name whose every A/AAAA record is a public address. Private,
 * loopback, link-local, CGNAT, multicast, reserved and unspecified addresses are refused,
 * so a miner cannot point the validator's `fetch()` at its own network. Loopback is allowed
 * only when the configuration says so (`ALLOW_LOOPBACK_MINERS`, local dev and tests).
 * Names are resolved over DNS-over-HTTPS (Workers have no resolver API), 5 s at most.
 */
import { withTimeout } from "./time.ts";

export type HostCheck = { ok: true } | { ok: false; reason: string };

export interface HostCheckOptions {
  allowLoopback: boolean;
  /** DNS-over-HTTPS JSON endpoint (`?name=…&type=A`). */
  dohUrl: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

const LABEL = /^(?!-)[a-z\d-]{1,63}(?<!-)$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function ipv4Octets(host: string): number[] | null {
  const match = IPV4.exec(host);
  if (!match) return null;
  const octets = match.slice(1).map(Number);
  return octets.every((o) => o <= 255) ? octets : null;
}

/** Why an IPv4 address is not public, or null when it is. */
function ipv4Problem(o: number[], allowLoopback: boolean): string | null {
  const [a = 0, b = 0] = o;
  if (a === 127) return allowLoopback ? null : "a loopback address";
  if (a === 0) return "an unspecified address";
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return "a private address";
  if (a === 100 && b >= 64 && b <= 127) return "a carrier-grade NAT address";
  if (a === 169 && b === 254) return "a link-local address";
  if (a >= 224 && a <= 239) return "a multicast address";
  if (a >= 240) return "a reserved address";
  if (
    (a === 192 && b === 0 && o[2] === 2) ||
    (a === 198 && b === 51 && o[2] === 100) ||
    (a === 203 && b === 0 && o[2] === 113)
  )
    return "a documentation address";
  if (a === 198 && (b === 18 || b === 19)) return "a benchmarking address";
  return null;
}

/** Expands an IPv6 literal to eight 16-bit groups, or null if it is not one. */
function ipv6Groups(host: string): number[] | null {
  const text = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (!text.includes(":") || !/^[0-9a-f:.]+$/.test(text)) return null;
  let tail: number[] = [];
  let body = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const octets = ipv4Octets(v4[1]);
    if (!octets) return null;
    tail = [((octets[0] ?? 0) << 8) | (octets[1] ?? 0), ((octets[2] ?? 0) << 8) | (octets[3] ?? 0)];
    body = text.slice(0, -v4[1].length).replace(/:$/, "") || ":";
    if (body === ":") body = "::";
  }
  const halves = body.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string | undefined) => (part ? part.split(":").map((g) => Number.parseInt(g, 16)) : []);
  const head = parse(halves[0]);
  const rest = parse(halves[1]);
  if ([...head, ...rest].some((g) => Number.isNaN(g) || g > 0xffff)) return null;
  const missing = 8 - head.length - rest.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  return [...head, ...new Array(Math.max(missing, 0)).fill(0), ...rest, ...tail];
}

function ipv6Problem(g: number[], allowLoopback: boolean): string | null {
  const [first = 0] = g;
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return allowLoopback ? null : "a loopback address";
  if (g.every((x) => x === 0)) return "an unspecified address";
  // IPv4-mapped (::ffff:a.b.c.d): judged as the IPv4 address.
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    const [hi = 0, lo = 0] = g.slice(6);
    return ipv4Problem([hi >> 8, hi & 255, lo >> 8, lo & 255], allowLoopback);
  }
  if ((first & 0xfe00) === 0xfc00) return "a unique-local (private) address";
  if ((first & 0xffc0) === 0xfe80) return "a link-local address";
  if ((first & 0xff00) === 0xff00) return "a multicast address";
  if (first === 0x2001 && g[1] === 0x0db8) return "a documentation address";
  if ((first & 0xe000) !== 0x2000) return "not a global unicast address";
  return null;
}

/** Checks an IP literal; null when `host` is not one. */
export function checkIpLiteral(host: string, allowLoopback: boolean): HostCheck | null {
  const v4 = ipv4Octets(host);
  const v6 = v4 ? null : ipv6Groups(host);
  if (!v4 && !v6) return null;
  const problem = v4 ? ipv4Problem(v4, allowLoopback) : ipv6Problem(v6 ?? [], allowLoopback);
  return problem ? { ok: false, reason: `${host} is ${problem}; miner hosts must be public` } : { ok: true };
}

interface DohAnswer {
  Status?: number;
  Answer?: { type: number; data: string }[];
}

async function resolveRecords(name: string, type: "A" | "AAAA", options: HostCheckOptions): Promise<string[]> {
  const url = new URL(options.dohUrl);
  url.searchParams.set("name", name);
  url.searchParams.set("type", type);
  const res = await (options.fetch ?? fetch)(url, { headers: { accept: "application/dns-json" } });
  if (!res.ok) throw new Error(`DNS-over-HTTPS answered ${res.status}`);
  const body = (await res.json()) as DohAnswer;
  const wanted = type === "A" ? 1 : 28;
  return (body.Answer ?? []).filter((a) => a.type === wanted).map((a) => a.data);
}

/** Upstream's `is_valid_host`: a public IP, or a name whose every address is public. */
export async function checkMinerHost(host: string, options: HostCheckOptions): Promise<HostCheck> {
  const name = host.trim().toLowerCase();
  const literal = checkIpLiteral(name, options.allowLoopback);
  if (literal) return literal;
  if (name === "localhost") {
    return options.allowLoopback ? { ok: true } : { ok: false, reason: "localhost is a loopback host" };
  }
  const labels = name.split(".");
  if (name.length > 253 || labels.length < 2 || !labels.every((label) => LABEL.test(label))) {
    return { ok: false, reason: `${host} is neither an IP address nor a valid DNS name` };
  }
  let addresses: string[];
  try {
    addresses = (
      await withTimeout(
        Promise.all([resolveRecords(name, "A", options), resolveRecords(name, "AAAA", options)]),
        options.timeoutMs ?? 5_000,
        `resolving ${name}`,
      )
    ).flat();
  } catch (error) {
    return { ok: false, reason: `${name} could not be resolved (${(error as Error).message})` };
  }
  if (addresses.length === 0) return { ok: false, reason: `${name} has no A or AAAA records` };
  for (const address of addresses) {
    const verdict = checkIpLiteral(address, options.allowLoopback);
    if (!verdict?.ok) return { ok: false, reason: `${name} resolves to ${address}, which is not public` };
  }
  return { ok: true };
}
