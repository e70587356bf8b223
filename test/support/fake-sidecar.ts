/**
 * @module A stand-in for the CUDA sidecar (gpu-agent/native) speaking its exact protocol
 * (`list`, `serve --device N`, JSON lines), computing with the CPU reference, so the
 * agent's GPU path is tested on machines without a GPU. FAKE_SIDECAR_CORRUPT=1 makes it
 * return wrong roots, as a broken GPU build would.
 */
import { createInterface } from "node:readline";
import { runPlan } from "../../src/gpu-proof/engine.ts";
import { fromHex, toHex } from "../../src/lib/bytes.ts";

const [command] = process.argv.slice(2);
if (command === "list") {
  console.log(
    JSON.stringify([
      {
        index: 0,
        name: "Fake GPU (CPU reference)",
        uuid: "00".repeat(16),
        memory: 1 << 30,
        major: 9,
        minor: 0,
        processors: 1,
        clock_rate: 1_000_000,
      },
    ]),
  );
} else if (command === "serve") {
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    const request = JSON.parse(line) as { id: number; n: number; key: string; init: number[]; steps: number[][] };
    const roots = runPlan({
      n: request.n,
      key: fromHex(request.key),
      init: request.init,
      steps: request.steps.map(([t, a, b]) => ({ t: t as number, a: a as number, b: b as number })),
    }).map(({ t, m, root }) => [t, m, process.env.FAKE_SIDECAR_CORRUPT ? "00".repeat(32) : toHex(root)]);
    process.stdout.write(`${JSON.stringify({ id: request.id, roots })}\n`);
  });
} else {
  process.exit(2);
}
