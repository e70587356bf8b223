/**
 * @module Request schemas of the `/chutes` routes: the deploy body the CLI sends
 * (upstream-sdk.md §3.4, upstream's `ChuteArgs`), cords, node selectors (resolved against
 * the GPU table, so unknown GPU types and selectors nothing satisfies are 422s located at
 * the field), the standard-template bodies, updates, sharing and the list query. Cords are
 * in ./cords.ts.
 */
import { z } from "zod";
import { type NodeSelectorInput, resolveNodeSelector } from "../services/gpus.ts";
import { logoIdField, pagination, textBool, utf8Text } from "./common.ts";
import { cordList } from "./cords.ts";
import { README_MAX_CHARS } from "./images.ts";

export const CHUTE_CODE_MAX_BYTES = 512 * 1024;
/** Room for the code plus cords with their JSON schemas. */
export const DEPLOY_BODY_MAX_BYTES = 2 * 1024 * 1024;
export const STANDARD_TEMPLATES = ["vllm", "diffusion", "tei"] as const;

const CHUTE_NAME = /^(?:[A-Za-z0-9_.-]+\/)*[A-Za-z0-9][A-Za-z0-9_./-]*$/;
/** A Hugging Face repository, `org/name`. */
export const HF_REPO = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;

export const chuteName = z
  .string()
  .min(3)
  .max(127)
  .regex(CHUTE_NAME, { message: "must be letters, digits and . _ - / (optionally user/name)" })
  .refine((name) => !name.includes("//") && !name.includes("..") && !name.endsWith("/"), {
    message: "must not contain '//' or '..' or end with '/'",
  });

const gpuList = z.array(z.string().max(32)).max(32).nullish();

const nodeSelectorFields = z.object({
  gpu_count: z.number().int().min(1).max(8).default(1),
  min_vram_gb_per_gpu: z.number().int().min(16).max(140).default(16),
  include: gpuList,
  exclude: gpuList,
});

/**
 * A node selector resolved against the GPU table (`supported_gpus`, `compute_multiplier`);
 * `adjust` lets a template change the input first (TEI's default exclusions).
 */
export function nodeSelectorSchema(adjust: (input: NodeSelectorInput) => NodeSelectorInput = (input) => input) {
  return nodeSelectorFields.transform((input, ctx) => {
    const result = resolveNodeSelector(adjust(input));
    if (result.ok) return result.selector;
    ctx.addIssue({ code: "custom", path: [result.field], message: result.message });
    return z.NEVER;
  });
}

const tagline = z.string().max(1024);
const readme = z.string().max(README_MAX_CHARS);
const toolDescription = z.string().max(16_384);

/** What the CLI's `deploy` sends (upstream's `ChuteArgs`); unknown keys of newer CLIs are ignored. */
export const deployChuteBody = z.object({
  name: chuteName,
  tagline: tagline.nullish().transform((value) => value ?? ""),
  readme: readme.nullish().transform((value) => value ?? ""),
  tool_description: toolDescription.nullish().transform((value) => value ?? null),
  logo_id: logoIdField,
  image: z.string().min(1).max(256),
  public: z.boolean().default(false),
  code: utf8Text(CHUTE_CODE_MAX_BYTES).pipe(z.string().min(1)),
  filename: z
    .string()
    .max(128)
    .regex(/^[a-z][a-z0-9_]*\.py$/, { message: "must be a module file name such as my_chute.py" }),
  ref_str: z
    .string()
    .max(128)
    .regex(/^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$/, { message: "must be module:variable" }),
  standard_template: z
    .enum(STANDARD_TEMPLATES)
    .nullish()
    .transform((value) => value ?? null),
  node_selector: nodeSelectorSchema(),
  cords: cordList,
});

export type DeployChuteBody = z.output<typeof deployChuteBody>;

/** Fields every standard-template body shares (upstream's vllm/diffusion/tei args). */
const templateFields = {
  /** An image reference (`chutes/vllm:0.7.2` or an id); default: the platform's newest. */
  image: z.string().min(1).max(256).optional(),
  logo_id: logoIdField,
  tagline: tagline.default(""),
  tool_description: toolDescription.nullish().transform((value) => value ?? null),
  readme: readme.default(""),
  public: z.boolean().default(true),
};

const hfRepo = z.string().max(256).regex(HF_REPO, { message: "must be a Hugging Face repository, org/name" });
/** A model that names its chute (vLLM, TEI): a repository that is also a valid chute name. */
const modelChuteName = hfRepo.pipe(chuteName);

export const vllmEngineArgs = z.strictObject({
  tokenizer: hfRepo.optional(),
  max_model_len: z.number().int().min(1).max(1_048_576).default(16_384),
  enforce_eager: z.boolean().default(false),
  num_scheduler_steps: z.number().int().min(1).max(64).default(16),
  trust_remote_code: z.boolean().default(true),
});

export const vllmChuteBody = z.object({
  model: modelChuteName,
  ...templateFields,
  node_selector: nodeSelectorSchema().prefault({ gpu_count: 1, min_vram_gb_per_gpu: 80 }),
  engine_args: vllmEngineArgs.prefault({}),
});

export const TEI_ENDPOINTS = ["embed", "predict", "rerank"] as const;
/** Embedding models are small: unless told otherwise, keep them off the largest GPUs (upstream's rule). */
const TEI_DEFAULT_EXCLUDE = ["h200", "h100", "h100_sxm"];

export const teiChuteBody = z.object({
  model: modelChuteName,
  endpoints: z
    .array(z.enum(TEI_ENDPOINTS))
    .min(1)
    .transform((list) => [...new Set(list)]),
  revision: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, { message: "must be a revision name or commit" })
    .optional(),
  ...templateFields,
  node_selector: nodeSelectorSchema((input) =>
    input.include || input.exclude ? input : { ...input, exclude: TEI_DEFAULT_EXCLUDE },
  ).prefault({ gpu_count: 1, min_vram_gb_per_gpu: 16 }),
});

export const diffusionChuteBody = z.object({
  model: z.union([hfRepo, z.string().regex(/^https:\/\/civitai\.com\/models\/\d+(\/[A-Za-z0-9_.-]*)*$/)], {
    message: "must be a Hugging Face repository (org/name) or a civitai.com/models URL",
  }),
  name: chuteName,
  ...templateFields,
  node_selector: nodeSelectorSchema().prefault({ gpu_count: 1, min_vram_gb_per_gpu: 24 }),
});

/** `PUT /chutes/{ref}`: blank values leave a field as it is (upstream's rule). */
export const updateChuteBody = z.object({
  tagline: tagline.nullish(),
  readme: readme.nullish(),
  tool_description: toolDescription.nullish(),
  logo_id: logoIdField,
});

export const shareChuteBody = z.object({
  chute_id_or_name: z.string().min(1).max(256),
  user_id_or_name: z.string().min(1).max(64),
});

export const listChutesQuery = z.object({
  include_public: textBool.default(false),
  template: z.enum([...STANDARD_TEMPLATES, "other"]).optional(),
  name: z.string().max(128).optional(),
  image: z.string().max(128).optional(),
  slug: z.string().max(63).optional(),
  ...pagination,
});
