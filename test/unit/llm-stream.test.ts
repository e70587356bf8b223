import { describe, expect, it } from "vitest";
import { meterLlmStream } from "../../src/lib/llm-stream.ts";

const enc = new TextEncoder();
const chunk = (content: string) => `data: {"id":"a","choices":[{"index":0,"delta":{"content":"${content}"}}]}\n\n`;
const usage = 'data: {"id":"a","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}\n\n';

function upstream(parts: string[], breakAtEnd = false): ReadableStream<Uint8Array> {
  const queue = [...parts];
  return new ReadableStream({
    pull(controller) {
      const next = queue.shift();
      if (next !== undefined) controller.enqueue(enc.encode(next));
      else if (breakAtEnd) controller.error(new Error("connection reset"));
      else controller.close();
    },
  });
}

const cost = () => ({ cost_usd: 0.25, invocation_id: "p-1" });

describe("LLM stream metering", () => {
  it("passes content through and ends with the usage chunk carrying cost, then [DONE]", async () => {
    const metered = meterLlmStream(upstream([chunk("a"), chunk("b"), usage, "data: [DONE]\n\n"]), Date.now(), cost);
    const text = await new Response(metered.readable).text();
    expect(text).toBe(
      `${chunk("a")}${chunk("b")}data: {"id":"a","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7,"cost_usd":0.25,"invocation_id":"p-1"}}\n\ndata: [DONE]\n\n`,
    );
    const result = await metered.result;
    expect(result).toMatchObject({ error: null, cancelled: false, metrics: { tokens: 2, it: 5, ot: 2 } });
    expect(result.endMs).toEqual(expect.any(Number));
  });

  it("reassembles events split across chunks and makes a usage chunk when the instance sent none", async () => {
    const whole = chunk("x") + chunk("y");
    const parts = [whole.slice(0, 7), whole.slice(7, 50), whole.slice(50), "data: [DO", "NE]\n\n"];
    const metered = meterLlmStream(upstream(parts), Date.now(), cost);
    const text = await new Response(metered.readable).text();
    expect(text.startsWith(whole)).toBe(true);
    expect(text).toContain('"usage":{"prompt_tokens":0,"completion_tokens":2,"total_tokens":2,"cost_usd":0.25');
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
  });

  it("closes without a usage chunk when the instance's stream breaks, and says why", async () => {
    const metered = meterLlmStream(upstream([chunk("a")], true), Date.now(), cost);
    const text = await new Response(metered.readable).text();
    expect(text).toBe(chunk("a"));
    expect((await metered.result).error).toMatch(/connection reset/);
  });

  it("reports a cancelled stream (client gone) and cancels the instance's stream", async () => {
    let cancelled = false;
    const source = new ReadableStream<Uint8Array>({
      pull: (controller) => controller.enqueue(enc.encode(chunk("z"))),
      cancel: () => {
        cancelled = true;
      },
    });
    const metered = meterLlmStream(source, Date.now(), cost);
    const reader = metered.readable.getReader();
    await reader.read();
    await reader.cancel();
    expect(await metered.result).toMatchObject({ cancelled: true, error: null });
    expect(cancelled).toBe(true);
  });
});
