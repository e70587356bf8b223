/**
 * @module The embedded Redis twin behind the local Upstash adapter (no-services default).
 *
 * It implements only the subset of commands the platform uses, with Redis's own
 * reply shapes and error texts. Any other command is answered with
 * `ERR unknown command`, so code that starts to depend on a command the twin
 * lacks fails loudly in tests instead of silently working only against real
 * Redis. `SUPPORTED_COMMANDS` is the list a test pins down.
 */
import { RespError, type RespValue } from "./resp.ts";

type Entry =
  | { type: "string"; value: Buffer; expiresAt: number | null }
  | { type: "hash"; value: Map<string, Buffer>; expiresAt: number | null }
  | { type: "zset"; value: Map<string, number>; expiresAt: number | null }
  | { type: "set"; value: Set<string>; expiresAt: number | null }
  | { type: "list"; value: Buffer[]; expiresAt: number | null }
  | { type: "stream"; value: StreamEntry[]; expiresAt: number | null; lastId: [number, number] };

interface StreamEntry {
  id: string;
  fields: Buffer[];
}

const WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INTEGER = "ERR value is not an integer or out of range";
const SYNTAX = "ERR syntax error";

type Handler = (store: MemoryRedis, args: Buffer[]) => RespValue;

export class MemoryRedis {
  readonly #data = new Map<string, Entry>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Runs one command; error replies come back as `RespError` values, never thrown. */
  execute(args: readonly (string | Buffer)[]): RespValue {
    const bufs = args.map((a) => (typeof a === "string" ? Buffer.from(a) : a));
    const name = (bufs[0]?.toString() ?? "").toUpperCase();
    const handler = COMMANDS[name];
    if (!handler) {
      return new RespError(`ERR unknown command '${name.toLowerCase()}' (not in the embedded Redis subset)`);
    }
    try {
      return handler(this, bufs.slice(1));
    } catch (error) {
      if (error instanceof RespError) return error;
      throw error;
    }
  }

  /** Reads a live entry (expired ones are dropped), checking its type when given. */
  get<T extends Entry["type"]>(key: string, type?: T): Extract<Entry, { type: T }> | undefined {
    const entry = this.#data.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt <= this.#now()) {
      this.#data.delete(key);
      return undefined;
    }
    if (type && entry.type !== type) throw new RespError(WRONGTYPE);
    return entry as Extract<Entry, { type: T }>;
  }

  set(key: string, entry: Entry): void {
    this.#data.set(key, entry);
  }

  delete(key: string): boolean {
    return this.get(key) !== undefined && this.#data.delete(key);
  }

  now(): number {
    return this.#now();
  }

  size(): number {
    for (const key of [...this.#data.keys()]) this.get(key);
    return this.#data.size;
  }

  /** Gets or creates a container entry of the given type. */
  container<T extends "hash" | "zset" | "set" | "list">(key: string, type: T): Extract<Entry, { type: T }> {
    const existing = this.get(key, type);
    if (existing) return existing;
    const fresh = {
      hash: () => ({ type: "hash", value: new Map(), expiresAt: null }),
      zset: () => ({ type: "zset", value: new Map(), expiresAt: null }),
      set: () => ({ type: "set", value: new Set(), expiresAt: null }),
      list: () => ({ type: "list", value: [], expiresAt: null }),
    }[type]() as Extract<Entry, { type: T }>;
    this.#data.set(key, fresh);
    return fresh;
  }

  /** Removes a container once it is empty, as Redis does. */
  dropIfEmpty(key: string): void {
    const entry = this.#data.get(key);
    if (!entry) return;
    const size = entry.value instanceof Map || entry.value instanceof Set ? entry.value.size : entry.value.length;
    if (size === 0) this.#data.delete(key);
  }
}

function str(b: Buffer | undefined): string {
  if (b === undefined) throw new RespError("ERR wrong number of arguments");
  return b.toString();
}

function int(b: Buffer | undefined): number {
  const s = str(b);
  if (!/^-?\d+$/.test(s)) throw new RespError(NOT_INTEGER);
  return Number(s);
}

function float(b: Buffer | undefined): number {
  const s = str(b).toLowerCase();
  if (s === "+inf" || s === "inf") return Number.POSITIVE_INFINITY;
  if (s === "-inf") return Number.NEGATIVE_INFINITY;
  const n = Number(s);
  if (s === "" || Number.isNaN(n)) throw new RespError("ERR value is not a valid float");
  return n;
}

function arity(args: Buffer[], min: number, even?: "pairs"): void {
  if (args.length < min || (even === "pairs" && (args.length - min) % 2 !== 0)) {
    throw new RespError("ERR wrong number of arguments");
  }
}

/** Parses a ZRANGE/ZCOUNT score bound such as `5`, `(5`, `-inf`. */
function scoreBound(b: Buffer | undefined): { value: number; exclusive: boolean } {
  const s = str(b);
  if (s.startsWith("(")) return { value: float(Buffer.from(s.slice(1))), exclusive: true };
  return { value: float(b), exclusive: false };
}

function inRange(score: number, min: ReturnType<typeof scoreBound>, max: ReturnType<typeof scoreBound>): boolean {
  const aboveMin = min.exclusive ? score > min.value : score >= min.value;
  const belowMax = max.exclusive ? score < max.value : score <= max.value;
  return aboveMin && belowMax;
}

function formatScore(score: number): string {
  if (score === Number.POSITIVE_INFINITY) return "inf";
  if (score === Number.NEGATIVE_INFINITY) return "-inf";
  return String(score);
}

function sortedMembers(entry: { value: Map<string, number> }): [string, number][] {
  return [...entry.value.entries()].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

function setExpiry(store: MemoryRedis, key: string, ms: number): number {
  const entry = store.get(key);
  if (!entry) return 0;
  if (ms <= 0) {
    store.delete(key);
    return 1;
  }
  entry.expiresAt = store.now() + ms;
  return 1;
}

function ttl(store: MemoryRedis, key: string, unitMs: number): number {
  const entry = store.get(key);
  if (!entry) return -2;
  if (entry.expiresAt === null) return -1;
  return Math.max(0, Math.round((entry.expiresAt - store.now()) / unitMs));
}

function incrementBy(store: MemoryRedis, key: string, delta: number): number {
  const entry = store.get(key, "string");
  const current = entry ? entry.value.toString() : "0";
  if (!/^-?\d+$/.test(current)) throw new RespError(NOT_INTEGER);
  const next = Number(current) + delta;
  store.set(key, { type: "string", value: Buffer.from(String(next)), expiresAt: entry?.expiresAt ?? null });
  return next;
}

function nextStreamId(entry: { lastId: [number, number] }, now: number, requested: string): [number, number] {
  const [lastMs, lastSeq] = entry.lastId;
  if (requested === "*") {
    return now > lastMs ? [now, 0] : [lastMs, lastSeq + 1];
  }
  const match = /^(\d+)-(\d+|\*)$/.exec(requested);
  if (!match) throw new RespError("ERR Invalid stream ID specified as stream command argument");
  const ms = Number(match[1]);
  const seq = match[2] === "*" ? (ms === lastMs ? lastSeq + 1 : 0) : Number(match[2]);
  if (ms < lastMs || (ms === lastMs && seq <= lastSeq)) {
    throw new RespError("ERR The ID specified in XADD is equal or smaller than the target stream top item");
  }
  return [ms, seq];
}

function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split("-").map(Number) as [number, number];
  const [bm, bs] = b.split("-").map(Number) as [number, number];
  return am - bm || as - bs;
}

function streamBound(s: string, isEnd: boolean): string {
  if (s === "-") return "0-0";
  if (s === "+") return `${Number.MAX_SAFE_INTEGER}-${Number.MAX_SAFE_INTEGER}`;
  return s.includes("-") ? s : `${s}-${isEnd ? Number.MAX_SAFE_INTEGER : 0}`;
}

const COMMANDS: Record<string, Handler> = {
  PING: (_s, args) => (args[0] ? args[0] : "PONG"),
  ECHO: (_s, args) => {
    arity(args, 1);
    return args[0] as Buffer;
  },
  GET: (s, args) => s.get(str(args[0]), "string")?.value ?? null,
  MGET: (s, args) => {
    arity(args, 1);
    return args.map((k) => {
      const e = s.get(str(k));
      return e?.type === "string" ? e.value : null;
    });
  },
  SET: (s, args) => {
    arity(args, 2);
    const key = str(args[0]);
    let expiresAt: number | null = null;
    let mode: "NX" | "XX" | null = null;
    let keepTtl = false;
    let returnOld = false;
    for (let i = 2; i < args.length; i++) {
      const opt = str(args[i]).toUpperCase();
      if (opt === "EX") expiresAt = s.now() + int(args[++i]) * 1000;
      else if (opt === "PX") expiresAt = s.now() + int(args[++i]);
      else if (opt === "EXAT") expiresAt = int(args[++i]) * 1000;
      else if (opt === "PXAT") expiresAt = int(args[++i]);
      else if (opt === "NX" || opt === "XX") mode = opt;
      else if (opt === "KEEPTTL") keepTtl = true;
      else if (opt === "GET") returnOld = true;
      else throw new RespError(SYNTAX);
    }
    const existing = s.get(key);
    if (returnOld && existing && existing.type !== "string") throw new RespError(WRONGTYPE);
    const old = existing?.type === "string" ? existing.value : null;
    if ((mode === "NX" && existing) || (mode === "XX" && !existing)) return returnOld ? old : null;
    if (keepTtl && existing) expiresAt = existing.expiresAt;
    s.set(key, { type: "string", value: args[1] as Buffer, expiresAt });
    return returnOld ? old : "OK";
  },
  GETDEL: (s, args) => {
    const key = str(args[0]);
    const entry = s.get(key, "string");
    if (!entry) return null;
    s.delete(key);
    return entry.value;
  },
  DEL: (s, args) => {
    arity(args, 1);
    return args.filter((k) => s.delete(str(k))).length;
  },
  EXISTS: (s, args) => {
    arity(args, 1);
    return args.filter((k) => s.get(str(k)) !== undefined).length;
  },
  INCR: (s, args) => incrementBy(s, str(args[0]), 1),
  DECR: (s, args) => incrementBy(s, str(args[0]), -1),
  INCRBY: (s, args) => incrementBy(s, str(args[0]), int(args[1])),
  DECRBY: (s, args) => incrementBy(s, str(args[0]), -int(args[1])),
  EXPIRE: (s, args) => setExpiry(s, str(args[0]), int(args[1]) * 1000),
  PEXPIRE: (s, args) => setExpiry(s, str(args[0]), int(args[1])),
  TTL: (s, args) => ttl(s, str(args[0]), 1000),
  PTTL: (s, args) => ttl(s, str(args[0]), 1),
  HSET: (s, args) => {
    arity(args, 3, "pairs");
    const key = str(args[0]);
    const hash = s.container(key, "hash");
    let added = 0;
    for (let i = 1; i < args.length; i += 2) {
      if (!hash.value.has(str(args[i]))) added++;
      hash.value.set(str(args[i]), args[i + 1] as Buffer);
    }
    return added;
  },
  HGET: (s, args) => s.get(str(args[0]), "hash")?.value.get(str(args[1])) ?? null,
  HMGET: (s, args) => {
    arity(args, 2);
    const hash = s.get(str(args[0]), "hash");
    return args.slice(1).map((f) => hash?.value.get(str(f)) ?? null);
  },
  HGETALL: (s, args) => {
    const hash = s.get(str(args[0]), "hash");
    return hash ? [...hash.value.entries()].flatMap(([f, v]) => [Buffer.from(f), v]) : [];
  },
  HDEL: (s, args) => {
    arity(args, 2);
    const key = str(args[0]);
    const hash = s.get(key, "hash");
    if (!hash) return 0;
    const removed = args.slice(1).filter((f) => hash.value.delete(str(f))).length;
    s.dropIfEmpty(key);
    return removed;
  },
  HINCRBY: (s, args) => {
    const hash = s.container(str(args[0]), "hash");
    const field = str(args[1]);
    const current = hash.value.get(field)?.toString() ?? "0";
    if (!/^-?\d+$/.test(current)) throw new RespError("ERR hash value is not an integer");
    const next = Number(current) + int(args[2]);
    hash.value.set(field, Buffer.from(String(next)));
    return next;
  },
  HLEN: (s, args) => s.get(str(args[0]), "hash")?.value.size ?? 0,
  ZADD: (s, args) => {
    arity(args, 3, "pairs");
    const key = str(args[0]);
    const zset = s.container(key, "zset");
    let added = 0;
    for (let i = 1; i < args.length; i += 2) {
      const member = str(args[i + 1]);
      if (!zset.value.has(member)) added++;
      zset.value.set(member, float(args[i]));
    }
    return added;
  },
  ZINCRBY: (s, args) => {
    const zset = s.container(str(args[0]), "zset");
    const member = str(args[2]);
    const next = (zset.value.get(member) ?? 0) + float(args[1]);
    zset.value.set(member, next);
    return formatScore(next);
  },
  ZREM: (s, args) => {
    arity(args, 2);
    const key = str(args[0]);
    const zset = s.get(key, "zset");
    if (!zset) return 0;
    const removed = args.slice(1).filter((m) => zset.value.delete(str(m))).length;
    s.dropIfEmpty(key);
    return removed;
  },
  ZCARD: (s, args) => s.get(str(args[0]), "zset")?.value.size ?? 0,
  ZSCORE: (s, args) => {
    const score = s.get(str(args[0]), "zset")?.value.get(str(args[1]));
    return score === undefined ? null : formatScore(score);
  },
  ZCOUNT: (s, args) => {
    const zset = s.get(str(args[0]), "zset");
    const min = scoreBound(args[1]);
    const max = scoreBound(args[2]);
    return zset ? [...zset.value.values()].filter((v) => inRange(v, min, max)).length : 0;
  },
  ZREMRANGEBYSCORE: (s, args) => {
    const key = str(args[0]);
    const zset = s.get(key, "zset");
    if (!zset) return 0;
    const min = scoreBound(args[1]);
    const max = scoreBound(args[2]);
    let removed = 0;
    for (const [member, score] of zset.value) {
      if (inRange(score, min, max)) {
        zset.value.delete(member);
        removed++;
      }
    }
    s.dropIfEmpty(key);
    return removed;
  },
  ZRANGE: (s, args) => {
    arity(args, 3);
    const zset = s.get(str(args[0]), "zset");
    let byScore = false;
    let rev = false;
    let withScores = false;
    let limit: [number, number] | null = null;
    for (let i = 3; i < args.length; i++) {
      const opt = str(args[i]).toUpperCase();
      if (opt === "BYSCORE") byScore = true;
      else if (opt === "REV") rev = true;
      else if (opt === "WITHSCORES") withScores = true;
      else if (opt === "LIMIT") limit = [int(args[++i]), int(args[++i])];
      else throw new RespError(SYNTAX);
    }
    if (!zset) return [];
    let members = sortedMembers(zset);
    if (rev) members.reverse();
    if (byScore) {
      const [lo, hi] = rev ? [args[2], args[1]] : [args[1], args[2]];
      const min = scoreBound(lo);
      const max = scoreBound(hi);
      members = members.filter(([, score]) => inRange(score, min, max));
      if (limit) members = members.slice(limit[0], limit[1] < 0 ? undefined : limit[0] + limit[1]);
    } else {
      const n = members.length;
      let start = int(args[1]);
      let stop = int(args[2]);
      if (start < 0) start = Math.max(0, n + start);
      if (stop < 0) stop = n + stop;
      members = start > stop ? [] : members.slice(start, stop + 1);
    }
    return members.flatMap(([m, score]) => (withScores ? [Buffer.from(m), formatScore(score)] : [Buffer.from(m)]));
  },
  SADD: (s, args) => {
    arity(args, 2);
    const set = s.container(str(args[0]), "set");
    return args.slice(1).filter((m) => {
      const had = set.value.has(str(m));
      set.value.add(str(m));
      return !had;
    }).length;
  },
  SREM: (s, args) => {
    arity(args, 2);
    const key = str(args[0]);
    const set = s.get(key, "set");
    if (!set) return 0;
    const removed = args.slice(1).filter((m) => set.value.delete(str(m))).length;
    s.dropIfEmpty(key);
    return removed;
  },
  SMEMBERS: (s, args) => [...(s.get(str(args[0]), "set")?.value ?? [])].map((m) => Buffer.from(m)),
  SISMEMBER: (s, args) => (s.get(str(args[0]), "set")?.value.has(str(args[1])) ? 1 : 0),
  SCARD: (s, args) => s.get(str(args[0]), "set")?.value.size ?? 0,
  LPUSH: (s, args) => {
    arity(args, 2);
    const list = s.container(str(args[0]), "list");
    for (const v of args.slice(1)) list.value.unshift(v);
    return list.value.length;
  },
  RPUSH: (s, args) => {
    arity(args, 2);
    const list = s.container(str(args[0]), "list");
    list.value.push(...args.slice(1));
    return list.value.length;
  },
  LPOP: (s, args) => {
    const key = str(args[0]);
    const value = s.get(key, "list")?.value.shift() ?? null;
    s.dropIfEmpty(key);
    return value;
  },
  RPOP: (s, args) => {
    const key = str(args[0]);
    const value = s.get(key, "list")?.value.pop() ?? null;
    s.dropIfEmpty(key);
    return value;
  },
  LLEN: (s, args) => s.get(str(args[0]), "list")?.value.length ?? 0,
  LRANGE: (s, args) => {
    const list = s.get(str(args[0]), "list")?.value ?? [];
    const n = list.length;
    let start = int(args[1]);
    let stop = int(args[2]);
    if (start < 0) start = Math.max(0, n + start);
    if (stop < 0) stop = n + stop;
    return start > stop ? [] : list.slice(start, stop + 1);
  },
  LTRIM: (s, args) => {
    const key = str(args[0]);
    const list = s.get(key, "list");
    if (!list) return "OK";
    const n = list.value.length;
    let start = int(args[1]);
    let stop = int(args[2]);
    if (start < 0) start = Math.max(0, n + start);
    if (stop < 0) stop = n + stop;
    list.value = start > stop ? [] : list.value.slice(start, stop + 1);
    s.dropIfEmpty(key);
    return "OK";
  },
  XADD: (s, args) => {
    arity(args, 4);
    const key = str(args[0]);
    let i = 1;
    let maxLen: number | null = null;
    if (str(args[i]).toUpperCase() === "MAXLEN") {
      i++;
      if (str(args[i]) === "~" || str(args[i]) === "=") i++;
      maxLen = int(args[i++]);
    }
    const fields = args.slice(i + 1);
    if (fields.length === 0 || fields.length % 2 !== 0) throw new RespError("ERR wrong number of arguments");
    const existing = s.get(key, "stream");
    const stream = existing ?? {
      type: "stream" as const,
      value: [],
      expiresAt: null,
      lastId: [0, 0] as [number, number],
    };
    const id = nextStreamId(stream, s.now(), str(args[i]));
    stream.lastId = id;
    stream.value.push({ id: `${id[0]}-${id[1]}`, fields });
    if (maxLen !== null && stream.value.length > maxLen) stream.value.splice(0, stream.value.length - maxLen);
    if (!existing) s.set(key, stream);
    return Buffer.from(`${id[0]}-${id[1]}`);
  },
  XRANGE: (s, args) => {
    arity(args, 3);
    const stream = s.get(str(args[0]), "stream");
    const start = streamBound(str(args[1]), false);
    const end = streamBound(str(args[2]), true);
    let count = Number.POSITIVE_INFINITY;
    if (args[3] && str(args[3]).toUpperCase() === "COUNT") count = int(args[4]);
    const out: RespValue[] = [];
    for (const entry of stream?.value ?? []) {
      if (out.length >= count) break;
      if (compareStreamIds(entry.id, start) >= 0 && compareStreamIds(entry.id, end) <= 0) {
        out.push([Buffer.from(entry.id), entry.fields]);
      }
    }
    return out;
  },
  XLEN: (s, args) => s.get(str(args[0]), "stream")?.value.length ?? 0,
  DBSIZE: (s) => s.size(),
};

/** The commands the embedded twin answers; anything else is an error reply. */
export const SUPPORTED_COMMANDS: readonly string[] = Object.keys(COMMANDS).sort();
