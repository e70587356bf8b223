import http from "node:http";
import { registerCaller, seedChute, seedInstance } from "/work/wt/gateway/test/support/gateway-fixture.ts";
import { E2E_WORKER_VARS } from "/work/wt/gateway/test/support/global-platform.ts";
import { hostRequest } from "/work/wt/gateway/test/support/http.ts";
import { startPlatform } from "/work/wt/gateway/test/support/platform.ts";

const p = await startPlatform({ vars: E2E_WORKER_VARS });
try {
  const owner = await registerCaller(p.url, p.databaseUrl);
  const heavy = await registerCaller(p.url, p.databaseUrl, { balanceUsd: 1000, permissions: ["unlimited"] });
  const model = "sim/m1";
  const llm = await seedChute(p.databaseUrl, owner, { template: "vllm", name: model });
  const s1 = await seedInstance(p.databaseUrl, llm.chuteId, { model });
  const headers = { authorization: `Bearer ${heavy.apiKey}`, "content-type": "application/json" };
  await new Promise<void>((resolve) => {
    const url = new URL("/v1/chat/completions", p.url);
    const t0 = Date.now();
    const req = http.request(
      url,
      { method: "POST", headers: { ...headers, host: `llm.localhost:${url.port}` } },
      (res) => {
        console.log("status", res.statusCode, res.headers);
        res.on("data", (c) => console.log(Date.now() - t0, JSON.stringify(c.toString())));
        res.on("end", () => {
          console.log("end");
          resolve();
        });
      },
    );
    setTimeout(() => {
      req.destroy();
      resolve();
    }, 4000);
    req.end(JSON.stringify({ model, stream: true, max_tokens: 3 }));
  });
  console.log("sim calls", s1.calls, s1.aborted);
  process.exit(0);
  const chute = await seedChute(p.databaseUrl, owner);
  const sims = await Promise.all([1, 2, 3].map(() => seedInstance(p.databaseUrl, chute.chuteId)));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 200 });
  const one = (i: number) =>
    new Promise<string>((resolve, reject) => {
      const url = new URL("/echo", p.url);
      const req = http.request(
        url,
        { method: "POST", agent, headers: { ...headers, host: `${chute.slug}.localhost:${url.port}` } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c) => chunks.push(c));
          res.on("end", () =>
            resolve(
              `${res.statusCode} ${res.statusCode === 200 ? "" : Buffer.concat(chunks).toString().slice(0, 200)}`,
            ),
          );
        },
      );
      req.on("error", (e) => resolve(`ERR ${e.message}`));
      req.end(JSON.stringify({ i }));
    });
  const statuses = await Promise.all(Array.from({ length: 200 }, (_, i) => one(i)));
  const counts = new Map<string, number>();
  for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1);
  console.log(counts);
  for (const s of sims) await s.close();
  await s1.close();
} finally {
  await p.stop();
}
