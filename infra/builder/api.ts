/**
 * @module The builder's side of the API: every request signed with the builder's Ed25519
 * key (the builders' scheme, src/schemas/builders.ts, through src/lib/service-client.ts):
 * the long-poll claim, heartbeats, the build inputs, log batches and the result.
 */
import { ServiceClient } from "../../src/lib/service-client.ts";
import { BUILDER_SCHEME } from "../../src/schemas/builders.ts";

export interface ClaimedBuild {
  image_id: string;
  attempt: number;
  username: string;
  name: string;
  tag: string;
  repository: string;
  lease_ms: number;
  lease_expires_at: string;
  deadline_at: string;
  push_token: string;
}

export interface LogLine {
  log_type: "stdout" | "stderr";
  log: string;
}

export type BuildResult = { status: "built" } | { status: "error"; error: string };

export class BuilderApi {
  readonly #client: ServiceClient;

  constructor(base: string, builderId: string, key: CryptoKey) {
    this.#client = new ServiceClient(BUILDER_SCHEME, base, builderId, key);
  }

  /** Waits up to `waitMs` for a build; null when none came. */
  async claim(waitMs: number): Promise<ClaimedBuild | null> {
    const res = await this.#client.request("POST", "/builders/jobs/claim", { wait_ms: waitMs }, waitMs + 15_000);
    if (res.status === 204) return null;
    return ((await res.json()) as { job: ClaimedBuild }).job;
  }

  async heartbeat(imageId: string): Promise<void> {
    await this.#client.request("POST", `/builders/jobs/${imageId}/heartbeat`, {}, 15_000);
  }

  /** The build context (zip) or Dockerfile, as bytes. */
  async input(imageId: string, which: "context" | "dockerfile"): Promise<Buffer> {
    const res = await this.#client.request("GET", `/builders/jobs/${imageId}/${which}`, undefined, 120_000);
    return Buffer.from(await res.arrayBuffer());
  }

  async logs(imageId: string, attempt: number, seq: number, lines: LogLine[]): Promise<void> {
    await this.#client.request("POST", `/builders/jobs/${imageId}/logs`, { attempt, seq, lines }, 30_000);
  }

  async result(imageId: string, attempt: number, result: BuildResult): Promise<void> {
    await this.#client.request("POST", `/builders/jobs/${imageId}/result`, { attempt, ...result }, 30_000);
  }
}
