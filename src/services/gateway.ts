/**
 * @module The invocation gateway's core (architecture §5.3–5.8): admit the call, lease an
 * instance from the chute's router, send the call sealed with the instance's session key,
 * check that the answer comes from that instance, relay it, and hand the attempt to
 * metering once the client has its last byte.
 *
 * - Retries go to another instance only before anything of an instance's answer reached
 *   the client (network error, timeout before the first byte, 5xx, 426, 429, a bad MAC).
 * - Bodies pass through natively (`pipeTo` into an `IdentityTransformStream` or a
 *   `FixedLengthStream`: no JavaScript per chunk), except LLM streams, whose events are
 *   scanned (src/lib/llm-stream.ts) so the final chunk can carry usage and cost, and small
 *   non-stream answers (`SMALL_ANSWER_BYTES`), read whole with one native call before the
 *   client gets them unchanged.
 * - A stream that breaks midway ends with an SSE `event: error`; the attempt is recorded
 *   as failed and not billed. A client that goes away cancels the instance's stream; that
 *   attempt is recorded as `CLIENT_DISCONNECTED`, neither billed nor counted against the
 *   instance.
 * - Streamed cords: while no instance has answered for `INVOKE_KEEPALIVE_MS`, the client
 *   gets a 200 `text/event-stream` with `: keepalive` comments, so proxies keep the
 *   connection; errors after that arrive as error events.
 */
import type { Context } from "hono";
import type { AppEnv } from "../app.ts";
import { utf8 } from "../lib/bytes.ts";
import { ApiError } from "../lib/errors.ts";
import {
  deriveEnvelopeKeys,
  type EnvelopeKeys,
  INVOKE_PATH,
  RESPONSE_MAC_HEADER,
  sealInvocation,
  verifyResponseMac,
} from "../lib/instance-envelope.ts";
import { meterLlmStream } from "../lib/llm-stream.ts";
import { hasPermission } from "../lib/permissions.ts";
import type { Cord } from "../schemas/cords.ts";
import { type AdmissionReads, admitInvocation } from "./admission.ts";
import type { GatewayChute } from "./gateway-chutes.ts";
import { openSessionKey } from "./instance-keys.ts";
import { acquireLease, type RoutableInstance, releaseLease } from "./instance-routing.ts";
import { type InvocationRecord, invocationCost, usdString } from "./metering.ts";
import { queueAttempts } from "./metering-client.ts";
import type { AuthUser } from "./users.ts";

export interface InvocationTarget {
  chute: GatewayChute;
  cord: Cord;
  user: AuthUser;
  method: string;
  query: string;
  contentType: string | null;
  body: Uint8Array;
  /** `Server-Timing` entries of the steps before (auth, chute lookup). */
  timings?: string[];
  /** Admission's Redis reads, when the route started them alongside authentication. */
  admissionReads?: AdmissionReads | Promise<AdmissionReads>;
}

type AttemptFailure = {
  ok: false;
  /** The `error_message` recorded. */
  error: string;
  retry: boolean;
  /** Counts against the instance (not for 429 or the client's own errors). */
  instanceFault: boolean;
  /** An authentic 4xx answer from the instance, relayed to the client as is. */
  relay?: Response;
};

type AttemptSuccess = {
  ok: true;
  response: Response;
  instance: RoutableInstance;
  leaseId: string;
  invocationId: string;
  startedMs: number;
  abort: AbortController;
  totalTimer: ReturnType<typeof setTimeout>;
  /** The whole answer, when it was small enough to read here (see `SMALL_ANSWER_BYTES`). */
  bytes?: Uint8Array;
};

/**
 * Non-stream answers up to this size that declare their length are read whole before the
 * client gets anything: one native read instead of a relay pipe per call, and an answer
 * that breaks midway can still go to another instance (nothing reached the client yet).
 */
const SMALL_ANSWER_BYTES = 64 * 1024;

/** Per-isolate envelope keys, keyed by instance and sealed key (a re-keyed instance gets new ones). */
const keyCache = new Map<string, Promise<EnvelopeKeys>>();

function envelopeKeys(instance: RoutableInstance, walletKey: string): Promise<EnvelopeKeys> {
  const cacheKey = `${instance.instanceId}:${instance.sealedSessionKey}`;
  let keys = keyCache.get(cacheKey);
  if (!keys) {
    if (keyCache.size > 10_000) keyCache.clear();
    keys = openSessionKey(instance.sealedSessionKey, walletKey, instance.instanceId).then((raw) =>
      deriveEnvelopeKeys(raw, instance.instanceId),
    );
    keys.catch(() => keyCache.delete(cacheKey));
    keyCache.set(cacheKey, keys);
  }
  return keys;
}

const sseEvent = (event: string, data: unknown) => utf8(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);

/** Whether the cord answers with a stream (SSE relayed with error events). */
const isStreamCord = (cord: Cord) => cord.stream || cord.output_content_type === "text/event-stream";

export async function invokeChute(c: Context<AppEnv>, target: InvocationTarget): Promise<Response> {
  const { config, deps } = c.var;
  const { chute, user } = target;
  const free = hasPermission(user.permissionsBitmask, "free_account") || chute.discount >= 1;
  const timings = [...(target.timings ?? [])];
  let mark = Date.now();
  const lap = (name: string) => {
    const now = Date.now();
    timings.push(`${name};dur=${now - mark}`);
    mark = now;
  };
  const waitUntil = (promise: Promise<unknown>) => c.executionCtx.waitUntil(promise.catch(() => {}));
  const admission = await admitInvocation(
    deps,
    {
      userId: user.userId,
      chuteId: chute.chuteId,
      unlimited: hasPermission(user.permissionsBitmask, "unlimited"),
      free,
      limit: config.RATE_LIMIT_COUNT,
      windowSeconds: config.RATE_LIMIT_WINDOW_S,
      nowMs: Date.now(),
    },
    target.admissionReads,
    waitUntil,
  );
  lap("admit");
  const parentId = crypto.randomUUID();
  const records: InvocationRecord[] = [];
  const baseRecord = (instance: RoutableInstance, invocationId: string, startedMs: number) => ({
    invocationId,
    parentInvocationId: parentId,
    chuteId: chute.chuteId,
    chuteUserId: chute.userId,
    functionName: target.cord.function,
    userId: user.userId,
    imageId: chute.imageId,
    imageUserId: chute.imageUserId,
    instanceId: instance.instanceId,
    minerUid: instance.minerUid,
    minerHotkey: instance.minerHotkey,
    startedAt: new Date(startedMs).toISOString(),
    computeMultiplier: chute.computeMultiplier,
  });
  const responseHeaders = (extra: Record<string, string> = {}): Record<string, string> => ({
    ...admission.headers,
    "x-chutes-invocationid": parentId,
    "server-timing": timings.join(", "),
    ...extra,
  });

  /** One attempt on one instance, up to the response headers. */
  async function attempt(exclude: string[]): Promise<AttemptSuccess | AttemptFailure | { ok: false; none: string }> {
    const lease = await acquireLease(config, chute.chuteId, { exclude, leaseMs: config.INVOKE_TIMEOUT_MS + 30_000 });
    lap("lease");
    if (!lease.ok) return { ok: false, none: lease.reason };
    const { instance, leaseId } = lease;
    exclude.push(instance.instanceId);
    const invocationId = crypto.randomUUID();
    const startedMs = Date.now();
    const fail = (failure: Omit<AttemptFailure, "ok">): AttemptFailure => {
      const outcome = failure.instanceFault ? "failure" : "neutral";
      records.push({
        ...baseRecord(instance, invocationId, startedMs),
        completedAt: new Date().toISOString(),
        errorMessage: failure.error,
        metrics: null,
        costUsd: 0,
        outcome,
      });
      waitUntil(releaseLease(config, chute.chuteId, leaseId, outcome));
      return { ok: false, ...failure };
    };
    const abort = new AbortController();
    const firstByteTimer = setTimeout(
      () => abort.abort(new Error("first byte timeout")),
      config.INVOKE_FIRST_BYTE_TIMEOUT_MS,
    );
    const totalTimer = setTimeout(() => abort.abort(new Error("total timeout")), config.INVOKE_TIMEOUT_MS);
    let response: Response;
    let keys: EnvelopeKeys;
    let nonce: string;
    try {
      keys = await envelopeKeys(instance, config.WALLET_KEY);
      const sealed = await sealInvocation(keys, {
        invocationId,
        method: target.method,
        path: target.cord.path,
        query: target.query,
        contentType: target.contentType,
        body: target.body,
      });
      nonce = sealed.nonce;
      response = await fetch(`http://${instance.host}:${instance.port}${INVOKE_PATH}`, {
        method: "POST",
        headers: sealed.headers,
        body: sealed.body,
        signal: abort.signal,
      });
    } catch (error) {
      clearTimeout(totalTimer);
      const timedOut = abort.signal.aborted;
      return fail({
        error: timedOut
          ? `timeout: no answer within ${config.INVOKE_FIRST_BYTE_TIMEOUT_MS} ms`
          : `connection failed: ${(error as Error).message}`,
        retry: true,
        instanceFault: true,
      });
    } finally {
      clearTimeout(firstByteTimer);
      lap("instance");
    }
    const authentic = await verifyResponseMac(keys, invocationId, nonce, response);
    const drop = (detail: Omit<AttemptFailure, "ok">) => {
      clearTimeout(totalTimer);
      response.body?.cancel().catch(() => {});
      return fail(detail);
    };
    if (response.status === 426) return drop({ error: "KEY_EXCHANGE_REQUIRED", retry: true, instanceFault: true });
    if (!authentic) {
      return drop({
        error: `unauthenticated response (status ${response.status}, bad or missing MAC)`,
        retry: true,
        instanceFault: true,
      });
    }
    if (response.status === 429) return drop({ error: "RATE_LIMIT", retry: true, instanceFault: false });
    if (response.status >= 500)
      return drop({ error: `instance error ${response.status}`, retry: true, instanceFault: true });
    if (response.status >= 400) {
      clearTimeout(totalTimer);
      const relay = new Response(response.body, {
        status: response.status,
        headers: responseHeaders({ "content-type": response.headers.get("content-type") ?? "application/json" }),
      });
      return { ...fail({ error: "BAD_REQUEST", retry: false, instanceFault: false }), relay };
    }
    const length = Number(response.headers.get("content-length") ?? Number.NaN);
    if (!isStreamCord(target.cord) && Number.isSafeInteger(length) && length <= SMALL_ANSWER_BYTES) {
      try {
        const bytes = new Uint8Array(await response.arrayBuffer());
        clearTimeout(totalTimer);
        return { ok: true, response, instance, leaseId, invocationId, startedMs, abort, totalTimer, bytes };
      } catch (error) {
        clearTimeout(totalTimer);
        return fail({
          error: abort.signal.aborted
            ? `timeout: no complete answer within ${config.INVOKE_TIMEOUT_MS} ms`
            : `answer broke: ${(error as Error)?.message ?? error}`,
          retry: true,
          instanceFault: true,
        });
      }
    }
    return { ok: true, response, instance, leaseId, invocationId, startedMs, abort, totalTimer };
  }

  /** Attempts until one answers; a failure after the loop says why nothing did. */
  async function attempts(): Promise<AttemptSuccess | ApiError | Response> {
    const exclude: string[] = [];
    let rateLimited = 0;
    let tried = 0;
    let last = "";
    for (let i = 0; i < config.INVOKE_MAX_ATTEMPTS; i++) {
      const result = await attempt(exclude);
      if (result.ok) return result;
      if ("none" in result) {
        if (tried > 0) break;
        return result.none === "at_capacity"
          ? new ApiError(
              "at_capacity",
              `Every instance of chute ${chute.chuteId} is at capacity; retry shortly. (This is not your rate limit.)`,
              {
                headers: responseHeaders({ "retry-after": "1" }),
              },
            )
          : new ApiError("no_instances", `No instances available (yet) for chute ${chute.chuteId}; retry later.`, {
              headers: responseHeaders({ "retry-after": "10" }),
            });
      }
      tried++;
      last = result.error;
      if (result.error === "RATE_LIMIT") rateLimited++;
      if (result.relay) return result.relay;
      if (!result.retry) break;
    }
    if (rateLimited === tried) {
      return new ApiError("at_capacity", "All instances of this chute are at maximum capacity; retry shortly.", {
        headers: responseHeaders({ "retry-after": "1" }),
      });
    }
    return new ApiError("bad_gateway", `No instance could serve the invocation (${tried} tried; last: ${last}).`, {
      headers: responseHeaders(),
    });
  }

  const flush = () => {
    if (records.length > 0) waitUntil(queueAttempts(config, records.splice(0)));
  };

  const costOf = (startedMs: number, endMs: number) =>
    free ? 0 : invocationCost((endMs - startedMs) / 1000, chute.computeMultiplier, chute.discount);

  /** Records how an answered attempt ended, ends its lease and hands the records to metering. */
  function settle(
    success: AttemptSuccess,
    outcome: { error: string | null; clientGone: boolean; metrics: Record<string, number> | null },
    endMs: number,
  ): void {
    const { instance, leaseId, invocationId, startedMs } = success;
    const error = outcome.clientGone ? "CLIENT_DISCONNECTED" : outcome.error;
    const verdict = error === null ? "success" : outcome.clientGone ? "neutral" : "failure";
    records.push({
      ...baseRecord(instance, invocationId, startedMs),
      completedAt: new Date(endMs).toISOString(),
      errorMessage: error,
      metrics: outcome.metrics,
      costUsd: error === null ? costOf(startedMs, endMs) : 0,
      outcome: verdict,
    });
    waitUntil(releaseLease(config, chute.chuteId, leaseId, verdict));
    flush();
  }

  /** Relays a successful attempt into `writable`; resolves when the client has it all. */
  async function relay(success: AttemptSuccess, sink: WritableStream<Uint8Array>, preamble: boolean): Promise<void> {
    const { response, startedMs } = success;
    const stream = isStreamCord(target.cord) || response.headers.get("content-type")?.startsWith("text/event-stream");
    const llm = chute.standardTemplate === "vllm" && target.cord.stream;
    let outcome: { error: string | null; clientGone: boolean; metrics: Record<string, number> | null };
    let endMs: number | null = null;
    const cost = (end: number) => costOf(startedMs, end);
    const body = response.body ?? new ReadableStream<Uint8Array>({ start: (ctl) => ctl.close() });
    if (llm) {
      const metered = meterLlmStream(body, startedMs, (end) => ({
        invocation_id: parentId,
        cost_usd: Number(usdString(cost(end))),
      }));
      await metered.readable.pipeTo(sink, { preventAbort: true, preventClose: true }).catch(() => {});
      const result = await metered.result;
      outcome = { error: result.error, clientGone: result.cancelled, metrics: result.metrics };
      endMs = result.endMs;
    } else {
      try {
        await body.pipeTo(sink, { preventAbort: true, preventClose: true });
        outcome = { error: null, clientGone: false, metrics: null };
      } catch (error) {
        outcome = { error: `stream broke: ${(error as Error)?.message ?? error}`, clientGone: false, metrics: null };
      }
    }
    clearTimeout(success.totalTimer);
    endMs ??= Date.now();
    // Finish the client's stream: close it, or tell it what broke. A sink that errored
    // means the client is gone (and then the break, if any, was its doing).
    const writer = sink.getWriter();
    try {
      if (!outcome.clientGone) await writer.ready;
      if (outcome.clientGone) {
        // Nothing to tell.
      } else if (outcome.error !== null) {
        if (stream || preamble) {
          await writer.write(
            sseEvent("error", {
              error: "stream_interrupted",
              detail: "The instance stopped mid-stream; this invocation is not billed.",
              invocation_id: parentId,
            }),
          );
          await writer.close();
        } else {
          await writer.abort(new Error(outcome.error));
        }
      } else {
        await writer.close();
      }
    } catch {
      outcome = { ...outcome, clientGone: true };
    }
    if (outcome.clientGone) success.abort.abort(new Error("client disconnected"));
    settle(success, outcome, endMs);
  }

  const passthroughHeaders = (response: Response) => {
    const headers: Record<string, string> = {};
    for (const [name, value] of response.headers) {
      const lower = name.toLowerCase();
      if (
        lower === RESPONSE_MAC_HEADER ||
        lower === "content-length" ||
        lower === "transfer-encoding" ||
        lower === "connection" ||
        lower === "keep-alive"
      )
        continue;
      headers[lower] = value;
    }
    return responseHeaders(headers);
  };

  const run = attempts();
  if (!isStreamCord(target.cord)) {
    const result = await run;
    flush();
    if (result instanceof ApiError) throw result;
    if (result instanceof Response) return result;
    if (result.bytes) {
      settle(result, { error: null, clientGone: false, metrics: null }, Date.now());
      const headers = passthroughHeaders(result.response);
      headers["content-length"] = String(result.bytes.byteLength);
      return new Response(result.bytes, { status: result.response.status, headers });
    }
    const length = Number(result.response.headers.get("content-length") ?? Number.NaN);
    const pipe =
      Number.isSafeInteger(length) && length >= 0 ? new FixedLengthStream(length) : new IdentityTransformStream();
    waitUntil(relay(result, pipe.writable, false));
    const headers = passthroughHeaders(result.response);
    if (Number.isSafeInteger(length)) headers["content-length"] = String(length);
    return new Response(pipe.readable, { status: result.response.status, headers });
  }

  // Streamed cords: answer at once when an instance answers within the keepalive delay,
  // else commit to a 200 event stream and keep it alive while waiting.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const early = await Promise.race([
    run,
    new Promise<"waiting">((resolve) => {
      timer = setTimeout(() => resolve("waiting"), config.INVOKE_KEEPALIVE_MS);
    }),
  ]);
  clearTimeout(timer);
  if (early !== "waiting") {
    flush();
    if (early instanceof ApiError) throw early;
    if (early instanceof Response) return early;
    const pipe = new IdentityTransformStream();
    waitUntil(relay(early, pipe.writable, false));
    return new Response(pipe.readable, { status: early.response.status, headers: passthroughHeaders(early.response) });
  }
  const pipe = new IdentityTransformStream();
  const writer = pipe.writable.getWriter();
  const keepalive = setInterval(() => {
    writer.write(utf8(": keepalive\n\n")).catch(() => {});
  }, config.INVOKE_KEEPALIVE_MS);
  writer.write(utf8(": keepalive\n\n")).catch(() => {});
  waitUntil(
    (async () => {
      const result = await run;
      clearInterval(keepalive);
      flush();
      if (result instanceof ApiError || result instanceof Response) {
        const detail =
          result instanceof ApiError
            ? { error: result.code, detail: result.detail }
            : { error: "bad_request", status: result.status, detail: await result.text() };
        await writer.write(sseEvent("error", { ...detail, invocation_id: parentId })).catch(() => {});
        await writer.close().catch(() => {});
        return;
      }
      writer.releaseLock();
      await relay(result, pipe.writable, true);
    })(),
  );
  return new Response(pipe.readable, {
    status: 200,
    headers: responseHeaders({ "content-type": "text/event-stream", "cache-control": "no-cache" }),
  });
}
