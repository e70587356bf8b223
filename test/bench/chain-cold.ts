/**
 * @module Benchmark: the cold cost of one metagraph fetch, `rpc` chain (evaluating
 * `@polkadot/api`, starting the API over HTTP, `get_neurons_lite`) against the `file`
 * chain as the baseline, each in a fresh Node process (a cold isolate's stand-in), both
 * against local servers. Prints medians and the ratio. Run: `npx node test/bench/chain-cold.ts`.
 */
import { execFile } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { startDevChain } from "../../infra/dev/dev-chain.ts";
import { DEV_METAGRAPH_SEED } from "../../infra/dev/services.ts";
import { fixtureChain } from "../support/chain-fixture.ts";
import { startFakeSubtensor } from "../support/fake-subtensor.ts";

const ROUNDS = 7;
const ROOT = path.resolve(import.meta.dirname, "../..");

const probe = (kind: "file" | "rpc", url: string) =>
  `
const t0 = performance.now();
const mod = await import(${JSON.stringify(path.join(ROOT, `src/chain/${kind}.ts`))});
const t1 = performance.now();
const chain = ${kind === "rpc" ? "await mod.RpcChain.connect({ url: URL })" : "new mod.FileChain({ url: URL })"};
const t2 = performance.now();
const neurons = await chain.getNeurons(64);
const t3 = performance.now();
await chain.close();
console.log(JSON.stringify({ load: t1 - t0, connect: t2 - t1, neurons: t3 - t2, total: t3 - t0, n: neurons.length }));
process.exit(0);
`
    .replace("URL", JSON.stringify(url))
    .replace("URL", JSON.stringify(url));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

const dir = mkdtempSync(path.join(tmpdir(), "bench-chain-"));
copyFileSync(DEV_METAGRAPH_SEED, path.join(dir, "metagraph.json"));
const dev = await startDevChain({ file: path.join(dir, "metagraph.json") });
const node = await startFakeSubtensor(fixtureChain(64));
try {
  const results: Record<string, { load: number; connect: number; neurons: number; total: number }[]> = {
    file: [],
    rpc: [],
  };
  for (let i = 0; i < ROUNDS; i++) {
    for (const kind of ["file", "rpc"] as const) {
      const script = probe(kind, kind === "rpc" ? node.url : dev.url);
      // Async: the servers answering the child live in this process.
      const { stdout: out } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], {
        cwd: ROOT,
        encoding: "utf8",
      });
      results[kind]?.push(JSON.parse(out.trim().split("\n").at(-1) ?? "{}"));
    }
  }
  const row = (kind: string) => {
    const r = results[kind] ?? [];
    return ["load", "connect", "neurons", "total"].map((k) => median(r.map((x) => x[k as keyof typeof x])));
  };
  const [file, rpc] = [row("file"), row("rpc")];
  console.log(`cold metagraph fetch, median of ${ROUNDS} fresh processes (ms): load / connect / getNeurons / total`);
  console.log(`file (baseline): ${file.map((x) => x.toFixed(1)).join(" / ")}`);
  console.log(`rpc:             ${rpc.map((x) => x.toFixed(1)).join(" / ")}`);
  console.log(`ratio rpc/file (total): ${((rpc[3] ?? 0) / (file[3] ?? 1)).toFixed(1)}x`);
} finally {
  await node.close();
  await dev.close();
  rmSync(dir, { recursive: true, force: true });
}
