/**
 * @module The agent's side of the API: every request signed with the agent's Ed25519 key
 * (src/gpu-proof/agent-auth.ts, through src/lib/service-client.ts), the long-poll claim, heartbeats, and result callbacks
 * retried with backoff until the API acknowledges them or refuses them for good.
 */
import { AGENT_SCHEME } from "../../src/gpu-proof/agent-auth.ts";
import { PermanentError, ServiceClient, withRetries } from "../../src/lib/service-client.ts";
import type { GpuOp } from "../../src/schemas/gpu-proof.ts";

export interface ClaimedJob {
  job_id: string;
  op: GpuOp;
  payload: unknown;
  attempts: number;
  lease_ms: number;
  deadline_at: string;
  created_at: string;
}

export interface ResultBody {
  job_id: string;
  op: GpuOp;
  status: "ok" | "error";
  result?: unknown;
  error?: string;
  timings: { queued_ms: number; gpu_ms: number; total_ms: number };
  agent_version: string;
  device: { index: number; name: string };
}

export { PermanentError };

export class ApiClient {
  readonly #client: ServiceClient;

  constructor(base: string, agentId: string, key: CryptoKey) {
    this.#client = new ServiceClient(AGENT_SCHEME, base, agentId, key);
  }

  #post(path: string, body: unknown, timeoutMs: number): Promise<Response> {
    return this.#client.request("POST", path, body, timeoutMs);
  }

  /** Waits up to `waitMs` for a job; null when none came. */
  async claim(ops: readonly GpuOp[], waitMs: number): Promise<ClaimedJob | null> {
    const res = await this.#post("/gpu_agents/jobs/claim", { ops, wait_ms: waitMs }, waitMs + 15_000);
    if (res.status === 204) return null;
    return ((await res.json()) as { job: ClaimedJob }).job;
  }

  async heartbeat(jobId: string): Promise<void> {
    await this.#post(`/gpu_agents/jobs/${jobId}/heartbeat`, {}, 15_000);
  }

  /** Posts a result (each try freshly signed) until acknowledged, refused, or `until` passes. */
  async postResult(body: ResultBody, until: number, onRetry: (error: Error) => void): Promise<void> {
    await withRetries(() => this.#post(`/gpu_agents/jobs/${body.job_id}/result`, body, 30_000), {
      until,
      maxDelayMs: 30_000,
      onRetry,
    });
  }
}
