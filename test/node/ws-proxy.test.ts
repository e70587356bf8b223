/**
 * The ws proxy's Terminate detection: it must end the Postgres connection exactly when
 * the client says goodbye, and never on a stray `X` byte inside another message.
 */
import { describe, expect, it } from "vitest";
import { terminateWatcher } from "../../infra/dev/ws-proxy.ts";

const untyped = (code: number, extra = Buffer.alloc(0)) => {
  const b = Buffer.alloc(8 + extra.length);
  b.writeInt32BE(b.length, 0);
  b.writeInt32BE(code, 4);
  extra.copy(b, 8);
  return b;
};
const typed = (type: string, payload: Buffer) => {
  const b = Buffer.alloc(5 + payload.length);
  b.write(type, 0, "latin1");
  b.writeInt32BE(payload.length + 4, 1);
  payload.copy(b, 5);
  return b;
};
const STARTUP = untyped(196608, Buffer.from("user\0postgres\0\0"));
const TERMINATE = typed("X", Buffer.alloc(0));

function watch(chunks: Buffer[]): number {
  let calls = 0;
  const feed = terminateWatcher(() => calls++);
  for (const chunk of chunks) feed(chunk);
  return calls;
}

describe("terminateWatcher", () => {
  it("fires on Terminate after the startup message and queries", () => {
    expect(watch([STARTUP, typed("Q", Buffer.from("select 1\0")), TERMINATE])).toBe(1);
  });

  it("ignores an X byte inside another message, and messages split across chunks", () => {
    const query = typed("Q", Buffer.from("select 'X'\0"));
    const all = Buffer.concat([STARTUP, query, typed("X", Buffer.alloc(0))]);
    expect(watch([STARTUP, query])).toBe(0);
    expect(watch([...all].map((byte) => Buffer.from([byte])))).toBe(1);
  });

  it("reads an SSL request as another untyped startup message", () => {
    expect(watch([untyped(80877103), STARTUP, TERMINATE, TERMINATE])).toBe(1);
    // A startup message whose length bytes spell X is not a Terminate.
    expect(watch([untyped(196608, Buffer.alloc(0x58 - 8))])).toBe(0);
  });
});
