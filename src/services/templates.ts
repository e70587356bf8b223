/**
 * @module The standard templates (`POST /chutes/vllm`, `/tei`, `/diffusion`): the cords
 * each one has (the SDK's `build_*_chute` layouts, upstream-sdk.md §3.5), the Python
 * module the miner runs (a call of that SDK builder), and the image it runs on by
 * default: the newest built public image of the platform account (`chutes/vllm:…`).
 *
 * A template chute is an ordinary chute with `standard_template` set; the `llm.` host
 * finds vLLM chutes by model name (`findTemplateChute`). Unlike upstream, the API does
 * not fetch the model's configuration from Hugging Face: engine arguments are taken as
 * given (with the SDK's defaults), and the node selector is the caller's or a fixed default.
 */
import type { Cord } from "../schemas/cords.ts";
import type { NodeSelector } from "./gpus.ts";

/** The account that publishes the template images (`chutes/vllm`, `chutes/tei`, `chutes/diffusion`). */
export const TEMPLATE_IMAGE_OWNER = "chutes";

export type StandardTemplate = "vllm" | "tei" | "diffusion";

const cord = (fields: Partial<Cord> & Pick<Cord, "path" | "function">): Cord => ({
  method: "POST",
  stream: false,
  passthrough: true,
  public_api_path: null,
  public_api_method: null,
  input_schema: {},
  output_schema: {},
  minimal_input_schema: {},
  output_content_type: null,
  ...fields,
});

/** The OpenAI-compatible cords of a vLLM chute (also what `build_sglang_chute` makes). */
export function vllmCords(): Cord[] {
  const openai = (fn: string, publicPath: string, stream: boolean) =>
    cord({
      path: `/${fn}`,
      function: fn,
      stream,
      public_api_path: publicPath,
      public_api_method: "POST",
      output_content_type: stream ? "text/event-stream" : "application/json",
    });
  return [
    openai("chat_stream", "/v1/chat/completions", true),
    openai("completion_stream", "/v1/completions", true),
    openai("chat", "/v1/chat/completions", false),
    openai("completion", "/v1/completions", false),
    cord({
      path: "/get_models",
      function: "get_models",
      method: "GET",
      public_api_path: "/v1/models",
      public_api_method: "GET",
      output_content_type: "application/json",
    }),
  ];
}

/** One passthrough cord per TEI endpoint (`/embed`, `/predict`, `/rerank`). */
export function teiCords(endpoints: readonly string[]): Cord[] {
  return endpoints.map((endpoint) =>
    cord({
      path: `/${endpoint}`,
      function: endpoint,
      public_api_path: `/${endpoint}`,
      public_api_method: "POST",
      output_content_type: "application/json",
    }),
  );
}

export function diffusionCords(): Cord[] {
  return [
    cord({
      path: "/generate",
      function: "generate",
      passthrough: false,
      public_api_path: "/generate",
      public_api_method: "POST",
      output_content_type: "image/jpeg",
    }),
  ];
}

/** A Python string literal holding `value` as JSON (JSON string syntax is valid Python). */
const pyJson = (value: unknown) => JSON.stringify(JSON.stringify(value));
const pyString = (value: string) => JSON.stringify(value);

/** The selector as the SDK's NodeSelector takes it (its derived fields are the server's). */
const selectorArgs = (selector: NodeSelector) => ({
  gpu_count: selector.gpu_count,
  min_vram_gb_per_gpu: selector.min_vram_gb_per_gpu,
  include: selector.include,
  exclude: selector.exclude,
});

export interface TemplateCodeInput {
  template: StandardTemplate;
  username: string;
  /** The chute's name (the model, for vLLM and TEI). */
  name: string;
  model: string;
  /** `owner/name:tag` of the image. */
  image: string;
  nodeSelector: NodeSelector;
  /** vLLM engine arguments, TEI endpoints and revision: whatever the builder takes beyond the common ones. */
  extra: Record<string, unknown>;
}

const BUILDERS: Record<StandardTemplate, string> = {
  vllm: "chutes.chute.template.vllm import build_vllm_chute",
  tei: "chutes.chute.template.tei import build_tei_chute",
  diffusion: "chutes.chute.template.diffusion import build_diffusion_chute",
};

/** The module a template chute runs (`chute.py`, ref `chute:chute`). */
export function templateCode(input: TemplateCodeInput): string {
  const builder = BUILDERS[input.template].split(" import ")[1];
  const modelArgs =
    input.template === "diffusion"
      ? [`    name=${pyString(input.name)},`, `    model_name_or_url=${pyString(input.model)},`]
      : [`    model_name=${pyString(input.model)},`];
  const extra = Object.entries(input.extra).map(([key, value]) => `    ${key}=json.loads(${pyJson(value)}),`);
  return [
    "import json",
    "from chutes.chute import NodeSelector",
    `from ${BUILDERS[input.template]}`,
    "",
    `chute = ${builder}(`,
    `    username=${pyString(input.username)},`,
    ...modelArgs,
    `    image=${pyString(input.image)},`,
    `    node_selector=NodeSelector(**json.loads(${pyJson(selectorArgs(input.nodeSelector))})),`,
    ...extra,
    ")",
    "",
  ].join("\n");
}
