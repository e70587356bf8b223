/**
 * @module The per-chute router: one Durable Object per chute (named by chute id) that
 * decides which instance serves each invocation (architecture §5.3–5.4).
 *
 * - least in-flight first, under a per-instance concurrency cap;
 * - leases that expire, so a lease whose release never arrives cannot pin an instance;
 * - instances set aside after consecutive failures, for a back-off that doubles with each
 *   further failure (the router's own, in-memory view; the durable failure count and the
 *   instance's deletion belong to the miner plane: `onInstanceOutcome` is the one place
 *   where it is told);
 * - a cold router (first use, or after eviction) loads its set from Postgres once; after
 *   that the set is pushed by `refreshChuteRouter` (src/services/instance-routing.ts), and
 *   re-read as a safety net: an empty set at most every 5 s, any set every minute in the
 *   background (never on the hot path of a router with instances).
 *
 * Lease state lives in memory only: every acquire/release is on the invocation's hot
 * path, and a storage write per call costs 15–20% of throughput (perf-anchors.md). It
 * is safe to lose: a restarted router starts from zero in-flight counts.
 */
import { DurableObject } from "cloudflare:workers";
import { openDatabase } from "../src/db/client.ts";
import { configFor } from "../src/env.ts";
import { loadRoutableInstances, type RoutableInstance } from "../src/services/instance-routing.ts";

export type { RoutableInstance };

export type AcquireResult =
  | { ok: true; leaseId: string; instance: RoutableInstance }
  | { ok: false; reason: "no_instances" | "at_capacity" };

export type AttemptOutcome = "success" | "failure" | "neutral";

interface Slot {
  instance: RoutableInstance;
  inFlight: number;
  consecutiveFailures: number;
  /** Not offered before this time (ms); 0 when in service. */
  setAsideUntil: number;
}

interface Lease {
  instanceId: string;
  expiresAt: number;
}

export const DEFAULT_LEASE_MS = 10 * 60_000;
/** Failures in a row after which an instance is set aside. */
export const SET_ASIDE_AFTER_FAILURES = 2;
export const SET_ASIDE_BASE_MS = 5_000;
export const SET_ASIDE_MAX_MS = 5 * 60_000;
/** An empty set is read again from Postgres at most this often (instances that came up unannounced). */
export const EMPTY_RELOAD_MS = 5_000;
/** A set is refreshed from Postgres in the background this often, in case a push was lost. */
export const BACKGROUND_RELOAD_MS = 60_000;

export interface LeaseRelease {
  leaseId: string;
  outcome: AttemptOutcome;
}

export interface AcquireOptions {
  chuteId: string;
  /** Instances this request already tried (retries go elsewhere). */
  exclude?: string[];
  leaseMs?: number;
  /** Leases ended since the caller's last RPC, released first (one RPC instead of two). */
  release?: LeaseRelease[];
}

export class ChuteRouter extends DurableObject {
  #slots = new Map<string, Slot>();
  #leases = new Map<string, Lease>();
  #loaded = false;
  #loadedAt = 0;
  #loading: Promise<void> | null = null;

  /** Replaces the routable instance set, keeping the counters of those that stay. */
  async setInstances(instances: RoutableInstance[]): Promise<void> {
    this.#replace(instances);
    this.#loaded = true;
    this.#loadedAt = Date.now();
  }

  /** Leases the least-loaded instance in service with spare capacity. */
  async acquire(options: AcquireOptions): Promise<AcquireResult> {
    if (options.release) await this.releaseMany(options.release);
    let now = Date.now();
    // First use, or an empty set that may have filled since (a push can be missed:
    // bounded to one read per EMPTY_RELOAD_MS); and a slow refresh in the background.
    if (!this.#loaded || (this.#slots.size === 0 && now - this.#loadedAt > EMPTY_RELOAD_MS)) {
      await this.#coldLoad(options.chuteId);
      now = Date.now();
    } else if (now - this.#loadedAt > BACKGROUND_RELOAD_MS && !this.#loading) {
      this.ctx.waitUntil(this.#coldLoad(options.chuteId, true).catch(() => {}));
    }
    this.#expireLeases(now);
    const exclude = options.exclude ?? [];
    let best: Slot | null = null;
    let inService = 0;
    for (const slot of this.#slots.values()) {
      if (slot.setAsideUntil > now || exclude.includes(slot.instance.instanceId)) continue;
      inService++;
      if (slot.inFlight >= slot.instance.maxConcurrency) continue;
      if (!best || slot.inFlight < best.inFlight) best = slot;
    }
    if (!best) return { ok: false, reason: inService === 0 ? "no_instances" : "at_capacity" };
    best.inFlight++;
    const leaseId = crypto.randomUUID();
    this.#leases.set(leaseId, {
      instanceId: best.instance.instanceId,
      expiresAt: now + (options.leaseMs ?? DEFAULT_LEASE_MS),
    });
    return { ok: true, leaseId, instance: best.instance };
  }

  /**
   * Ends a lease and records how the attempt went: a failure counts towards setting the
   * instance aside, a success clears its count, `neutral` (client gone, bad request)
   * changes nothing. Unknown or expired leases are ignored (release is idempotent).
   */
  async release(leaseId: string, outcome: AttemptOutcome = "neutral"): Promise<void> {
    const lease = this.#leases.get(leaseId);
    this.#endLease(leaseId);
    if (!lease || outcome === "neutral") return;
    const slot = this.#slots.get(lease.instanceId);
    if (!slot) return;
    if (outcome === "success") {
      slot.consecutiveFailures = 0;
      slot.setAsideUntil = 0;
    } else {
      slot.consecutiveFailures++;
      if (slot.consecutiveFailures >= SET_ASIDE_AFTER_FAILURES) {
        const exponent = slot.consecutiveFailures - SET_ASIDE_AFTER_FAILURES;
        slot.setAsideUntil = Date.now() + Math.min(SET_ASIDE_BASE_MS * 2 ** exponent, SET_ASIDE_MAX_MS);
      }
    }
  }

  /** `release` for several leases in one call (the gateway batches its releases per isolate). */
  async releaseMany(releases: LeaseRelease[]): Promise<void> {
    for (const { leaseId, outcome } of releases) await this.release(leaseId, outcome);
  }

  /** Per-instance state (RPC, for tests and operators). */
  async snapshot(): Promise<
    { instanceId: string; inFlight: number; maxConcurrency: number; consecutiveFailures: number; setAside: boolean }[]
  > {
    const now = Date.now();
    this.#expireLeases(now);
    return [...this.#slots.values()].map((s) => ({
      instanceId: s.instance.instanceId,
      inFlight: s.inFlight,
      maxConcurrency: s.instance.maxConcurrency,
      consecutiveFailures: s.consecutiveFailures,
      setAside: s.setAsideUntil > now,
    }));
  }

  #replace(instances: RoutableInstance[]): void {
    const next = new Map<string, Slot>();
    for (const instance of instances) {
      const old = this.#slots.get(instance.instanceId);
      next.set(instance.instanceId, {
        instance,
        inFlight: old?.inFlight ?? 0,
        consecutiveFailures: old?.consecutiveFailures ?? 0,
        setAsideUntil: old?.setAsideUntil ?? 0,
      });
    }
    this.#slots = next;
  }

  /** Reads the chute's active, verified instances; concurrent calls share one read. */
  #coldLoad(chuteId: string, refresh = false): Promise<void> {
    this.#loading ??= (async () => {
      const config = configFor(this.env as object);
      const handle = openDatabase(config);
      try {
        const instances = await loadRoutableInstances(handle.db, config, chuteId);
        // A push that landed while loading is newer than what was read.
        if (!this.#loaded || refresh || this.#slots.size === 0) this.#replace(instances);
        this.#loaded = true;
        this.#loadedAt = Date.now();
      } finally {
        this.#loading = null;
        await handle.close().catch(() => {});
      }
    })();
    return this.#loading;
  }

  #expireLeases(now: number): void {
    for (const [leaseId, lease] of this.#leases) {
      if (lease.expiresAt <= now) this.#endLease(leaseId);
    }
  }

  #endLease(leaseId: string): void {
    const lease = this.#leases.get(leaseId);
    if (!lease) return;
    this.#leases.delete(leaseId);
    const slot = this.#slots.get(lease.instanceId);
    if (slot && slot.inFlight > 0) slot.inFlight--;
  }
}
