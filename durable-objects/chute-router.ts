/**
 * @module The per-chute router: one Durable Object per chute (named by chute id) that
 * decides which instance serves each invocation.
 *
 * Lease state lives in memory only: every acquire/release is on the invocation's hot
 * path, and a storage write per call costs 15–20% of throughput (perf-anchors.md). It
 * is safe to lose: a restarted router starts from zero in-flight counts, and leases
 * expire on their own, so a lease whose release never arrives cannot pin an instance.
 */
import { DurableObject } from "cloudflare:workers";

export interface RoutableInstance {
  instanceId: string;
  host: string;
  port: number;
  /** How many invocations it may serve at once. */
  maxConcurrency: number;
}

export type AcquireResult =
  | { ok: true; leaseId: string; instance: RoutableInstance }
  | { ok: false; reason: "no_instances" | "at_capacity" };

interface Slot {
  instance: RoutableInstance;
  inFlight: number;
}

interface Lease {
  instanceId: string;
  expiresAt: number;
}

export const DEFAULT_LEASE_MS = 10 * 60_000;

export class ChuteRouter extends DurableObject {
  #slots = new Map<string, Slot>();
  #leases = new Map<string, Lease>();

  /** Replaces the routable instance set, keeping in-flight counts of those that stay. */
  async setInstances(instances: RoutableInstance[]): Promise<void> {
    const next = new Map<string, Slot>();
    for (const instance of instances) {
      next.set(instance.instanceId, { instance, inFlight: this.#slots.get(instance.instanceId)?.inFlight ?? 0 });
    }
    this.#slots = next;
  }

  /** Leases the least-loaded instance with spare capacity. */
  async acquire(leaseMs = DEFAULT_LEASE_MS): Promise<AcquireResult> {
    this.#expireLeases();
    if (this.#slots.size === 0) return { ok: false, reason: "no_instances" };
    let best: Slot | null = null;
    for (const slot of this.#slots.values()) {
      if (slot.inFlight >= slot.instance.maxConcurrency) continue;
      if (!best || slot.inFlight < best.inFlight) best = slot;
    }
    if (!best) return { ok: false, reason: "at_capacity" };
    best.inFlight++;
    const leaseId = crypto.randomUUID();
    this.#leases.set(leaseId, { instanceId: best.instance.instanceId, expiresAt: Date.now() + leaseMs });
    return { ok: true, leaseId, instance: best.instance };
  }

  /** Ends a lease; unknown or expired leases are ignored (release is idempotent). */
  async release(leaseId: string): Promise<void> {
    this.#endLease(leaseId);
  }

  /** In-flight counts per instance (RPC, for tests and operators). */
  async snapshot(): Promise<{ instanceId: string; inFlight: number; maxConcurrency: number }[]> {
    this.#expireLeases();
    return [...this.#slots.values()].map((s) => ({
      instanceId: s.instance.instanceId,
      inFlight: s.inFlight,
      maxConcurrency: s.instance.maxConcurrency,
    }));
  }

  #expireLeases(): void {
    const now = Date.now();
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
