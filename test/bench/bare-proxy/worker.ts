/**
 * @module The benchmark's baseline (perf-anchors.md target "A"): a bare `fetch()`
 * pass-through Worker on the same runtime as the gateway. It forwards every request to
 * `X-Upstream` or else `UPSTREAM` (a simulated instance) and returns the upstream body natively.
 */
export default {
  async fetch(request: Request, env: { UPSTREAM: string }): Promise<Response> {
    const url = new URL(request.url);
    const upstream = await fetch(`${request.headers.get("x-upstream") ?? env.UPSTREAM}${url.pathname}`, {
      method: request.method,
      headers: request.headers,
      body: request.body,
    });
    return new Response(upstream.body, upstream);
  },
};
