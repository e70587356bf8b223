/**
 * @module The agent's scheduler: claims jobs while it has room (a bounded queue), runs one
 * op per device at a time, keeps each job's lease alive with heartbeats, and posts every
 * result as a signed callback, retried with backoff. Serves `/healthz` and `/metrics`.
 *
 * Idempotency: results are kept by job_id for a while, so a job that comes back (its
 * lease lapsed while the result was in flight) is answered with the same result instead
 * of being computed again; the API itself records a job_id's result once.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../../src/lib/log.ts";
import { errorFields } from "../../src/lib/log.ts";
import { type ApiClient, type ClaimedJob, PermanentError, type ResultBody } from "./api.ts";
import { AGENT_VERSION, type AgentConfig } from "./config.ts";
import type { Device } from "./engines.ts";
import { Metrics } from "./metrics.ts";
import { OpError, runOp } from "./ops.ts";

const REMEMBERED_RESULTS = 256;

export interface SelfTestState {
  passed: boolean;
  failures: string[];
}

interface Held {
  job: ClaimedJob;
  claimedAt: number;
}

export class Agent {
  readonly #config: AgentConfig;
  readonly #api: ApiClient;
  readonly #devices: Device[];
  readonly #log: Logger;
  readonly #selfTest: SelfTestState;
  readonly metrics = new Metrics();
  readonly #waiting: Held[] = [];
  readonly #busy = new Map<number, string>();
  readonly #results = new Map<string, ResultBody>();
  #running = false;
  #wake: (() => void) | null = null;
  #server: http.Server | null = null;
  #inFlight = new Set<Promise<void>>();

  constructor(config: AgentConfig, api: ApiClient, devices: Device[], log: Logger, selfTest: SelfTestState) {
    this.#config = config;
    this.#api = api;
    this.#devices = devices;
    this.#log = log;
    this.#selfTest = selfTest;
    this.metrics.set("gpu_agent_selftest_passed", "1 when the start-up self-test passed.", selfTest.passed ? 1 : 0);
    this.#gauges();
  }

  get held(): number {
    return this.#waiting.length + this.#busy.size;
  }

  #gauges(): void {
    this.metrics.set("gpu_agent_queue_depth", "Claimed jobs waiting for a device.", this.#waiting.length);
    this.metrics.set("gpu_agent_busy_devices", "Devices running an op.", this.#busy.size);
  }

  /** Starts claiming; an agent whose self-test failed never does. */
  start(): void {
    if (!this.#selfTest.passed) {
      this.#log.error("self-test failed: refusing work", { failures: this.#selfTest.failures });
      return;
    }
    this.#running = true;
    void this.#claimLoop();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    await Promise.all(this.#devices.map((d) => d.close()));
  }

  async #claimLoop(): Promise<void> {
    let backoff = 1000;
    while (this.#running) {
      if (this.held >= this.#config.GPU_AGENT_QUEUE_BOUND) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        continue;
      }
      try {
        const job = await this.#api.claim(this.#config.GPU_AGENT_OPS, this.#config.GPU_AGENT_CLAIM_WAIT_MS);
        backoff = 1000;
        this.metrics.inc("gpu_agent_claims_total", "Claim requests by outcome.", { outcome: job ? "job" : "empty" });
        if (job && this.#running) this.#accept(job);
      } catch (error) {
        this.metrics.inc("gpu_agent_claims_total", "Claim requests by outcome.", { outcome: "error" });
        this.#log.warn("claim failed", { ...errorFields(error), retry_in_ms: backoff });
        await new Promise((resolve) => setTimeout(resolve, backoff));
        backoff = Math.min(30_000, backoff * 2);
      }
    }
  }

  #accept(job: ClaimedJob): void {
    this.#log.info("job claimed", { job_id: job.job_id, op: job.op, attempts: job.attempts });
    const known = this.#results.get(job.job_id);
    if (known) {
      this.#track(this.#report(known, job));
      return;
    }
    this.#waiting.push({ job, claimedAt: Date.now() });
    this.#dispatch();
  }

  #track(work: Promise<void>): void {
    this.#inFlight.add(work);
    void work.finally(() => {
      this.#inFlight.delete(work);
      this.#gauges();
      this.#wake?.();
      this.#wake = null;
      this.#dispatch();
    });
  }

  #dispatch(): void {
    for (const device of this.#devices) {
      if (this.#busy.has(device.index)) continue;
      const next = this.#waiting.shift();
      if (!next) break;
      this.#busy.set(device.index, next.job.job_id);
      this.#gauges();
      this.#track(
        this.#run(next, device).finally(() => {
          this.#busy.delete(device.index);
        }),
      );
    }
  }

  async #run({ job, claimedAt }: Held, device: Device): Promise<void> {
    const started = Date.now();
    const beat = setInterval(
      () => {
        this.#api.heartbeat(job.job_id).catch((error) => this.#log.warn("heartbeat failed", errorFields(error)));
      },
      Math.max(250, Math.floor(job.lease_ms / 3)),
    );
    let body: ResultBody;
    const base = { job_id: job.job_id, op: job.op, agent_version: AGENT_VERSION };
    const device_ = { index: device.index, name: device.name };
    try {
      const result = await runOp(job.op, job.payload, device, this.#config.GPU_AGENT_CPU_MAX_N);
      body = { ...base, status: "ok", result, timings: this.#timings(claimedAt, started), device: device_ };
    } catch (error) {
      if (!(error instanceof OpError)) this.#log.error("op crashed", { job_id: job.job_id, ...errorFields(error) });
      const message = error instanceof Error ? error.message : String(error);
      body = { ...base, status: "error", error: message, timings: this.#timings(claimedAt, started), device: device_ };
    } finally {
      clearInterval(beat);
    }
    this.metrics.observeOp(job.op, body.timings.gpu_ms / 1000);
    this.#remember(body);
    await this.#report(body, job);
  }

  #timings(claimedAt: number, started: number) {
    const now = Date.now();
    return { queued_ms: started - claimedAt, gpu_ms: now - started, total_ms: now - claimedAt };
  }

  #remember(body: ResultBody): void {
    this.#results.set(body.job_id, body);
    if (this.#results.size > REMEMBERED_RESULTS) {
      const oldest = this.#results.keys().next().value;
      if (oldest !== undefined) this.#results.delete(oldest);
    }
  }

  async #report(body: ResultBody, job: ClaimedJob): Promise<void> {
    const until = Date.parse(job.deadline_at);
    try {
      await this.#api.postResult(body, until, (error) => {
        this.metrics.inc("gpu_agent_callback_retries_total", "Result callbacks retried after a failure.");
        this.#log.warn("result callback failed; retrying", { job_id: body.job_id, ...errorFields(error) });
      });
      this.metrics.inc("gpu_agent_jobs_total", "Jobs finished and acknowledged, by op and status.", {
        op: body.op,
        status: body.status,
      });
      this.#log.info("job done", { job_id: body.job_id, op: body.op, status: body.status, ms: body.timings.total_ms });
    } catch (error) {
      const outcome = error instanceof PermanentError ? "refused" : "gave_up";
      this.metrics.inc("gpu_agent_callbacks_lost_total", "Results the API refused or never acknowledged.", {
        outcome,
      });
      this.#log.warn("result not recorded", { job_id: body.job_id, outcome, ...errorFields(error) });
    }
  }

  health() {
    return {
      ok: this.#selfTest.passed,
      version: AGENT_VERSION,
      mode: this.#devices[0]?.kind ?? "none",
      selftest: this.#selfTest,
      devices: this.#devices.map((d) => ({ index: d.index, name: d.name, busy: this.#busy.has(d.index) })),
      queue_depth: this.#waiting.length,
      queue_bound: this.#config.GPU_AGENT_QUEUE_BOUND,
    };
  }

  /** `/healthz` (503 when the self-test failed) and `/metrics` on the configured local address. */
  listen(): Promise<AddressInfo> {
    const server = http.createServer((req, res) => {
      if (req.url === "/healthz") {
        const health = this.health();
        res.writeHead(health.ok ? 200 : 503, { "content-type": "application/json" });
        res.end(JSON.stringify(health));
      } else if (req.url === "/metrics") {
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
        res.end(this.metrics.render());
      } else {
        res.writeHead(404, { "content-type": "application/json" });
        res.end(JSON.stringify({ detail: "only /healthz and /metrics" }));
      }
    });
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#config.GPU_AGENT_HEALTH_PORT, this.#config.GPU_AGENT_HEALTH_HOST, () =>
        resolve(server.address() as AddressInfo),
      );
    });
  }
}
