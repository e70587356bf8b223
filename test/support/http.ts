/**
 * @module HTTP from Node tests to a local platform under any virtual host.
 *
 * Node's resolver cannot resolve `*.localhost`, and Node's fetch silently replaces a
 * `Host` header, so requests go to the loopback address with `node:http`, which sends
 * the Host header it is given (wrangler dev then puts that host in the request URL).
 */
import http from "node:http";
import { cliHeaders, pythonJsonDumps, randomHotkey, type TestHotkey } from "./chutes-cli.ts";

export interface HostResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

export interface HostRequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  timeoutMs?: number;
}

export function hostRequest(
  baseUrl: string,
  host: string,
  path: string,
  init: HostRequestInit = {},
): Promise<HostResponse> {
  const url = new URL(path, baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: init.method ?? "GET",
        headers: { ...init.headers, host: `${host}:${url.port}` },
        timeout: init.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: <T>() => JSON.parse(text) as T,
          });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${init.method ?? "GET"} ${host}${path}: timed out`)));
    req.on("error", reject);
    if (init.body) req.write(init.body);
    req.end();
  });
}

/** `POST /users/register` on `api.` as `chutes register` sends it (signed body, Python's JSON spacing). */
export async function registerOverApi(
  base: string,
  hotkey: TestHotkey,
  username: string,
  coldkey = randomHotkey().ss58,
): Promise<HostResponse> {
  const body = pythonJsonDumps({ username, coldkey });
  return hostRequest(base, "api.localhost", "/users/register", {
    method: "POST",
    headers: await cliHeaders(hotkey, { body }),
    body,
  });
}
