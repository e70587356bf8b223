/**
 * @module Cords, a chute's callable endpoints: how the gateway picks the cord a public
 * request is for, and the `cord_ref_id` that lets chute lists send each distinct cord set
 * once (`cord_refs`).
 */
import { uuid5 } from "../lib/ids.ts";
import type { Cord } from "../schemas/cords.ts";

/**
 * The cord serving `method path` on a chute's public host (`{slug}.` or `llm.`), or
 * undefined. OpenAI routes have a stream and a non-stream cord on one public path; the
 * request's `stream` flag picks between them (non-stream when it says nothing).
 */
export function findPublicCord(cords: readonly Cord[], method: string, path: string, stream = false): Cord | undefined {
  const candidates = cords.filter(
    (cord) => cord.public_api_path === path && cord.public_api_method === method.toUpperCase(),
  );
  return candidates.find((cord) => cord.stream === stream) ?? candidates[0];
}

/** The cord `path` names for SDK-style calls (`POST /chutes/{id}{path}`), or undefined. */
export function findCord(cords: readonly Cord[], path: string): Cord | undefined {
  return cords.find((cord) => cord.path === path);
}

/**
 * uuid5 of the cords' JSON, as upstream lists them; for vLLM chutes the model name is
 * blanked out of schema defaults first, so every vLLM chute shares one reference.
 */
export function cordRefId(cords: readonly Cord[], chuteName: string, template: string | null): Promise<string> {
  let json = JSON.stringify(cords);
  if (template === "vllm") json = json.replaceAll(`"default":${JSON.stringify(chuteName)}`, '"default":""');
  return uuid5(json);
}
