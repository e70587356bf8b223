/**
 * @module The client half of the service credential (src/lib/service-signatures.ts), used
 * by the GPU agent and the image builder: every request freshly signed, 4xx refusals told
 * apart from failures worth retrying, and a bounded retry loop with jittered backoff.
 * Web-standard only (fetch, WebCrypto).
 */
import { type ServiceScheme, signServiceRequest } from "./service-signatures.ts";

/** The API refused for good (4xx other than 408/429): retrying cannot help. */
export class PermanentError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "PermanentError";
    this.status = status;
  }
}

export class ServiceClient {
  readonly #scheme: ServiceScheme;
  readonly #base: string;
  readonly #id: string;
  readonly #key: CryptoKey;

  constructor(scheme: ServiceScheme, base: string, id: string, key: CryptoKey) {
    this.#scheme = scheme;
    this.#base = base;
    this.#id = id;
    this.#key = key;
  }

  /** A signed request (a JSON body for POST); throws `PermanentError` or `Error` on failure statuses. */
  async request(method: "GET" | "POST", path: string, body: unknown, timeoutMs: number): Promise<Response> {
    const bytes = method === "POST" ? new TextEncoder().encode(JSON.stringify(body)) : new Uint8Array();
    const signed = await signServiceRequest(this.#scheme, this.#key, this.#id, { method, target: path, body: bytes });
    const res = await fetch(`${this.#base}${path}`, {
      method,
      body: method === "POST" ? bytes : undefined,
      headers: method === "POST" ? { ...signed, "content-type": "application/json" } : signed,
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (res.status >= 400) {
      const text = await res.text();
      const message = `${method} ${path}: ${res.status} ${text.slice(0, 300)}`;
      if (res.status < 500 && res.status !== 408 && res.status !== 429) throw new PermanentError(res.status, message);
      throw new Error(message);
    }
    return res;
  }
}

/**
 * Runs `fn` until it succeeds, retrying transient failures with jittered exponential
 * backoff (capped at `maxDelayMs`) while `until` (epoch ms) allows; a `PermanentError`
 * or the last failure is thrown.
 */
export async function withRetries<T>(
  fn: () => Promise<T>,
  options: { until: number; maxDelayMs: number; onRetry?: (error: Error) => void },
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof PermanentError) throw error;
      const delay = Math.min(options.maxDelayMs, 1000 * 2 ** attempt) * (0.75 + Math.random() / 2);
      if (Date.now() + delay > options.until) throw error;
      options.onRetry?.(error as Error);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
