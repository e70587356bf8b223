/**
 * @module Dispatch by host: picks the host app for a request (see ./classify.ts for the
 * rules) and runs it.
 */
import type { App } from "../app.ts";
import { createHostApp } from "../app.ts";
import { llmInvocations, slugInvocations } from "../routes/invoke.ts";
import { apiHost } from "./api.ts";
import type { HostKind } from "./classify.ts";
import { registryHost } from "./registry.ts";
import { eventsHost, socketHost } from "./sockets.ts";

const unknownHost = createHostApp({
  notFound: (_method, _path, url) =>
    `Unknown host ${url.hostname}: this service answers on api., llm., socket., events., registry. and {chute-slug}. of its domain`,
});

const llmHost = createHostApp({
  notFound: (method, path) =>
    `No OpenAI-compatible route for ${method} ${path}: this host serves GET /v1/models and POST /v1/chat/completions, /v1/completions, /v1/embeddings`,
});
llmHost.route("/", llmInvocations);

const chuteHost = createHostApp({
  notFound: (_method, path, url) => `No cord of the chute at ${url.hostname} matches ${path}`,
});
chuteHost.route("/", slugInvocations);

export const HOST_APPS: Record<HostKind["kind"], App> = {
  api: apiHost,
  llm: llmHost,
  socket: socketHost,
  events: eventsHost,
  registry: registryHost,
  chute: chuteHost,
  unknown: unknownHost,
};
