/**
 * @module The one place the gateway runs JavaScript over a response body: OpenAI-style
 * SSE streams of vLLM chutes, so that the final chunk carries usage and cost, and the
 * invocation's metrics (ttft, tokens, tokens/s, prompt and completion tokens) are known.
 *
 * Events pass through as they arrive (the original bytes, when a chunk holds whole events
 * and nothing to look at). The instance's usage chunk is held back until the stream ends
 * and then sent with `usage.cost_usd` and `usage.invocation_id` added, just before
 * `data: [DONE]`; a stream that ends without one gets a usage chunk made from the tokens
 * counted. The cost of this per-chunk work is measured by `npm run bench:gateway`
 * (docs/benchmarks.md).
 *
 * The readable never errors because of the instance: when the instance's stream breaks,
 * it closes, and `result.error` says what broke (the gateway then writes an error event).
 */

export interface LlmStreamResult {
  /** null when the instance's stream ended properly. */
  error: string | null;
  /** The client went away (the readable was cancelled). */
  cancelled: boolean;
  metrics: Record<string, number> | null;
  /** When the cost in the final chunk was computed (ms); the bill uses the same instant. */
  endMs: number | null;
}

const DONE = "data: [DONE]";

export function meterLlmStream(
  upstream: ReadableStream<Uint8Array>,
  startedMs: number,
  costFields: (endMs: number) => Record<string, unknown>,
): { readable: ReadableStream<Uint8Array>; result: Promise<LlmStreamResult> } {
  const reader = upstream.getReader();
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let buffer = "";
  let tokens = 0;
  let ttftMs: number | null = null;
  let usage: Record<string, unknown> | null = null;
  let template: Record<string, unknown> = {};
  let finished = false;
  let resolveResult: (result: LlmStreamResult) => void = () => {};
  const result = new Promise<LlmStreamResult>((resolve) => {
    resolveResult = resolve;
  });

  const metrics = (endMs: number): Record<string, number> => {
    const seconds = Math.max((endMs - startedMs) / 1000, 0.001);
    const it = Number((usage?.prompt_tokens as number | undefined) ?? 0);
    const ot = Number((usage?.completion_tokens as number | undefined) ?? tokens);
    const out: Record<string, number> = { tokens, it, ot, tps: ot / seconds };
    if (ttftMs !== null) out.ttft = ttftMs / 1000;
    return out;
  };

  /** Looks at one complete event; returns the text to forward now ("" to hold it back). */
  const look = (event: string): string => {
    const data = event.startsWith("data: ") ? event.slice(6) : null;
    if (data === null || data === "[DONE]") return data === "[DONE]" ? "" : `${event}\n\n`;
    if (data.includes('"usage"')) {
      try {
        const parsed = JSON.parse(data) as Record<string, unknown>;
        if (parsed.usage && typeof parsed.usage === "object") {
          usage = parsed.usage as Record<string, unknown>;
          template = parsed;
          const choices = parsed.choices;
          if (!Array.isArray(choices) || choices.length === 0) return "";
          // A usage chunk that also carries content: forward the content without usage.
          countToken();
          return `data: ${JSON.stringify({ ...parsed, usage: null })}\n\n`;
        }
      } catch {
        // Not JSON: pass it on as it is.
      }
    }
    countToken();
    return `${event}\n\n`;
  };
  const countToken = () => {
    tokens++;
    if (ttftMs === null) ttftMs = Date.now() - startedMs;
  };

  const finalChunk = (endMs: number): string => {
    const base = usage ?? { prompt_tokens: 0, completion_tokens: tokens, total_tokens: tokens };
    const { usage: _ignored, ...rest } = template;
    const chunk = { ...rest, choices: [], usage: { ...base, ...costFields(endMs) } };
    return `data: ${JSON.stringify(chunk)}\n\n${DONE}\n\n`;
  };

  const finish = (controller: ReadableStreamDefaultController<Uint8Array>, error: string | null) => {
    if (finished) return;
    finished = true;
    const endMs = Date.now();
    if (error === null) controller.enqueue(encoder.encode(finalChunk(endMs)));
    controller.close();
    resolveResult({ error, cancelled: false, metrics: metrics(endMs), endMs: error === null ? endMs : null });
  };

  /** Reads one upstream chunk; true when it enqueued something or ended the stream. */
  const step = async (controller: ReadableStreamDefaultController<Uint8Array>): Promise<boolean> => {
    {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        finish(controller, `stream broke: ${(error as Error)?.message ?? String(error)}`);
        return true;
      }
      if (chunk.done) {
        buffer += decoder.decode();
        // An instance that ends without [DONE] or a final blank line still ended properly.
        const rest = buffer.trim();
        buffer = "";
        if (rest && rest !== DONE) {
          const text = look(rest);
          if (text) controller.enqueue(encoder.encode(text));
        }
        finish(controller, null);
        return true;
      }
      const text = decoder.decode(chunk.value, { stream: true });
      // Fast path: whole events, nothing to hold back: forward the original bytes.
      if (buffer === "" && text.endsWith("\n\n") && !text.includes('"usage"') && !text.includes(DONE)) {
        for (let i = text.indexOf("data: "); i !== -1; i = text.indexOf("data: ", i + 6)) countToken();
        controller.enqueue(chunk.value);
        return true;
      }
      buffer += text.replaceAll("\r\n", "\n");
      let out = "";
      let sawDone = false;
      for (let end = buffer.indexOf("\n\n"); end !== -1; end = buffer.indexOf("\n\n")) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (event.trim() === DONE) sawDone = true;
        else if (event.trim()) out += look(event);
      }
      if (out) controller.enqueue(encoder.encode(out));
      if (sawDone) {
        // Read what is left (nothing, normally) so the connection ends cleanly.
        (async () => {
          while (!(await reader.read()).done);
        })().catch(() => {});
        finish(controller, null);
        return true;
      }
      return out !== "";
    }
  };

  const readable = new ReadableStream<Uint8Array>({
    // A pull that enqueues nothing is not called again: read until something goes out.
    async pull(controller) {
      while (!finished && !(await step(controller)));
    },
    cancel(reason) {
      finished = true;
      reader.cancel(reason).catch(() => {});
      const endMs = Date.now();
      resolveResult({ error: null, cancelled: true, metrics: metrics(endMs), endMs: null });
    },
  });
  return { readable, result };
}
