/**
 * @module The agent's side of the API: every request signed with the agent's Ed25519 key
 * (src/gpu-proof/agent-auth.ts), the long-poll claim, heartbeats, and result callbacks
 * retried with backoff until the API acknowledges them or refuses them for good.
 */
import { signAgentRequest } from "../../src/gpu-proof/agent-auth.ts";
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

/** The API refused the request for good (4xx other than 408/429): retrying cannot help. */
export class PermanentError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "PermanentError";
    this.status = status;
  }
}

export class ApiClient {
  readonly #base: string;
  readonly #agentId: string;
  readonly #key: CryptoKey;

  constructor(base: string, agentId: string, key: CryptoKey) {
    this.#base = base;
    this.#agentId = agentId;
    this.#key = key;
  }

  async #post(path: string, body: unknown, timeoutMs: number): Promise<Response> {
    const bytes = new TextEncoder().encode(JSON.stringify(body));
    const headers = await signAgentRequest(this.#key, this.#agentId, { method: "POST", target: path, body: bytes });
    const res = await fetch(`${this.#base}${path}`, {
      method: "POST",
      body: bytes,
      headers: { ...headers, "content-type": "application/json" },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (res.status >= 400) {
      const text = await res.text();
      const message = `${path}: ${res.status} ${text.slice(0, 300)}`;
      if (res.status < 500 && res.status !== 408 && res.status !== 429) throw new PermanentError(res.status, message);
      throw new Error(message);
    }
    return res;
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
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#post(`/gpu_agents/jobs/${body.job_id}/result`, body, 30_000);
        return;
      } catch (error) {
        if (error instanceof PermanentError) throw error;
        const delay = Math.min(30_000, 1000 * 2 ** attempt) * (0.75 + Math.random() / 2);
        if (Date.now() + delay > until) throw error;
        onRetry(error as Error);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
}
