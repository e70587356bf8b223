/**
 * @module `/chutes`: deploy (`chutes deploy`'s body), the standard templates (`/vllm`,
 * `/tei`, `/diffusion`), list, get, edit, delete and sharing, in upstream's shapes
 * (`ChuteResponse`; lists carry `cord_ref_id` per item and each distinct cord set once in
 * `cord_refs`). Collections answer on both `/chutes` and `/chutes/`.
 *
 * Deploys and deletions are announced to miners through the miner hub (`chute_created`,
 * `chute_updated`, `chute_deleted`) once committed; a deletion's broadcast is what tells
 * miners to stop the chute's instances.
 */
import { type Context, Hono } from "hono";
import type { z } from "zod";
import type { AppEnv } from "../app.ts";
import type { Database } from "../db/client.ts";
import { type AuthEnv, ensureDeveloper, optionalUser, requireUser, scopeFromPath } from "../lib/auth.ts";
import { ApiError } from "../lib/errors.ts";
import { jsonBody, pathParams, queryParams } from "../lib/validation.ts";
import {
  DEPLOY_BODY_MAX_BYTES,
  deployChuteBody,
  diffusionChuteBody,
  listChutesQuery,
  shareChuteBody,
  teiChuteBody,
  updateChuteBody,
  vllmChuteBody,
} from "../schemas/chutes.ts";
import { objectRef } from "../schemas/common.ts";
import type { Cord } from "../schemas/cords.ts";
import {
  type ChuteRow,
  type ChuteView,
  chuteViews,
  type DeployInput,
  deleteChute,
  deployChute,
  findChute,
  listChutes,
  setChuteShare,
  updateChute,
} from "../services/chutes.ts";
import { cordRefId } from "../services/cords.ts";
import { estimatedPrice } from "../services/gpus.ts";
import { findImage, newestPublicImage } from "../services/images.ts";
import { publishMinerEvent } from "../services/miner-events.ts";
import {
  diffusionCords,
  type StandardTemplate,
  TEMPLATE_IMAGE_OWNER,
  teiCords,
  templateCode,
  vllmCords,
} from "../services/templates.ts";
import { imageResponse } from "./images.ts";

const PURPOSE = "chutes";
const COLLECTION = ["/chutes", "/chutes/"];
const WRITE = { scope: { objectType: "chutes", action: "write" } } as const;

const notFound = () => new ApiError("not_found", "Chute not found, or does not belong to you");

function chuteResponse(view: ChuteView, listed: { cordRefId: string } | null = null) {
  const { chute } = view;
  return {
    chute_id: chute.chuteId,
    name: chute.name,
    tagline: chute.tagline,
    readme: chute.readme,
    public: chute.public,
    version: chute.version,
    tool_description: chute.toolDescription,
    slug: chute.slug,
    standard_template: chute.standardTemplate,
    cords: listed ? null : chute.cords,
    cord_ref_id: listed?.cordRefId ?? null,
    created_at: chute.createdAt.toISOString(),
    updated_at: chute.updatedAt.toISOString(),
    image: imageResponse(view.image),
    user: { username: view.owner.username, user_id: view.owner.userId, created_at: view.owner.createdAt.toISOString() },
    supported_gpus: chute.nodeSelector.supported_gpus,
    node_selector: chute.nodeSelector,
    current_estimated_price: estimatedPrice(chute.nodeSelector.compute_multiplier, chute.discount),
    instances: view.instances.map((instance) => ({
      instance_id: instance.instanceId,
      region: instance.region,
      active: instance.active,
      verified: instance.verified,
      last_verified_at: instance.lastVerifiedAt?.toISOString() ?? null,
    })),
    logo_id: chute.logoId,
    logo: view.logo,
    hot: view.instances.some((instance) => instance.active && instance.verified),
    chutes_version: chute.chutesVersion,
  };
}

async function single(db: Database, chute: ChuteRow) {
  const [view] = await chuteViews(db, [chute]);
  if (!view) throw notFound();
  return chuteResponse(view);
}

/** Deploys, maps refusals to statuses, tells miners, answers the chute (200, as the CLI expects). */
async function deploy(c: Context<AuthEnv>, input: DeployInput) {
  const result = await deployChute(c.var.deps.db, c.var.auth.user, input);
  if (!result.ok) {
    const refusedInput = result.reason === "image_not_found" || result.reason === "logo_not_found";
    throw new ApiError(refusedInput ? "bad_request" : "conflict", result.detail);
  }
  const { chute } = result;
  await publishMinerEvent(
    c.var,
    result.created
      ? { reason: "chute_created", data: { chute_id: chute.chuteId, version: chute.version } }
      : {
          reason: "chute_updated",
          data: { chute_id: chute.chuteId, version: chute.version, old_version: result.oldVersion },
        },
  );
  return c.json(await single(c.var.deps.db, chute));
}

/** The image a template chute runs on: the one named, or the platform's newest `chutes/{template}`. */
async function templateImage(c: Context<AuthEnv>, template: StandardTemplate, ref: string | undefined) {
  const image = ref
    ? await findImage(c.var.deps.db, c.var.auth.user, ref)
    : await newestPublicImage(c.var.deps.db, TEMPLATE_IMAGE_OWNER, template);
  if (!image) {
    throw new ApiError(
      "bad_request",
      ref
        ? `Chute image not found, or does not belong to you: ${ref}`
        : `No built public ${TEMPLATE_IMAGE_OWNER}/${template} image exists yet: name one with \`image\`.`,
    );
  }
  return image;
}

/** What every template body has (upstream's vllm/tei/diffusion args share these). */
interface TemplateBody {
  image?: string;
  tagline: string;
  readme: string;
  tool_description: string | null;
  logo_id: string | null;
  public: boolean;
  node_selector: DeployInput["nodeSelector"];
}

/** What a template makes of its body: the chute's name, the model, its cords, the builder's other arguments. */
interface TemplateShape {
  name: string;
  model: string;
  cords: Cord[];
  extra: Record<string, unknown>;
}

/** A `POST /chutes/{template}` handler: the body, the image, the generated module, then an ordinary deploy. */
function templateRoute<S extends z.ZodType<TemplateBody>>(
  template: StandardTemplate,
  schema: S,
  shape: (body: z.output<S>) => TemplateShape,
) {
  return async (c: Context<AuthEnv>) => {
    const body = await jsonBody(c, schema);
    const image = await templateImage(c, template, body.image);
    const { name, model, cords, extra } = shape(body);
    const username = c.var.auth.user.username;
    return deploy(c, {
      name,
      tagline: body.tagline,
      readme: body.readme,
      toolDescription: body.tool_description,
      logoId: body.logo_id,
      image: image.imageId,
      public: body.public,
      code: templateCode({
        template,
        username,
        name,
        model,
        image: `${image.owner.username}/${image.name}:${image.tag}`,
        nodeSelector: body.node_selector,
        extra,
      }),
      filename: "chute.py",
      refStr: "chute:chute",
      standardTemplate: template,
      nodeSelector: body.node_selector,
      cords,
    });
  };
}

const deployGuards = [requireUser({ ...WRITE, maxBodyBytes: DEPLOY_BODY_MAX_BYTES }), ensureDeveloper] as const;

export const chutesRoutes = new Hono<AppEnv>()
  .on("POST", COLLECTION, ...deployGuards, async (c) => {
    const body = await jsonBody(c, deployChuteBody);
    return deploy(c, {
      name: body.name,
      tagline: body.tagline,
      readme: body.readme,
      toolDescription: body.tool_description,
      logoId: body.logo_id,
      image: body.image,
      public: body.public,
      code: body.code,
      filename: body.filename,
      refStr: body.ref_str,
      standardTemplate: body.standard_template,
      nodeSelector: body.node_selector,
      cords: body.cords,
    });
  })
  .post(
    "/chutes/vllm",
    ...deployGuards,
    templateRoute("vllm", vllmChuteBody, (body) => ({
      name: body.model,
      model: body.model,
      cords: vllmCords(),
      extra: { engine_args: body.engine_args },
    })),
  )
  .post(
    "/chutes/tei",
    ...deployGuards,
    templateRoute("tei", teiChuteBody, (body) => ({
      name: body.model,
      model: body.model,
      cords: teiCords(body.endpoints),
      extra: { endpoints: body.endpoints, ...(body.revision ? { revision: body.revision } : {}) },
    })),
  )
  .post(
    "/chutes/diffusion",
    ...deployGuards,
    templateRoute("diffusion", diffusionChuteBody, (body) => ({
      name: body.name,
      model: body.model,
      cords: diffusionCords(),
      extra: {},
    })),
  )
  .post("/chutes/share", requireUser(WRITE), (c) => share(c, true))
  .post("/chutes/unshare", requireUser(WRITE), (c) => share(c, false))
  .on(
    "GET",
    COLLECTION,
    optionalUser({ purpose: PURPOSE, scope: { objectType: "chutes", action: "read" } }),
    async (c) => {
      const query = queryParams(c, listChutesQuery);
      const { total, items } = await listChutes(c.var.deps.db, c.var.auth?.user.userId ?? null, {
        includePublic: query.include_public,
        template: query.template,
        name: query.name,
        image: query.image,
        slug: query.slug,
        page: query.page,
        limit: query.limit,
      });
      const cordRefs: Record<string, Cord[]> = {};
      const views = await chuteViews(c.var.deps.db, items);
      const listed = await Promise.all(
        views.map(async (view) => {
          const ref = await cordRefId(view.chute.cords, view.chute.name, view.chute.standardTemplate);
          cordRefs[ref] = view.chute.cords;
          return chuteResponse(view, { cordRefId: ref });
        }),
      );
      return c.json({ total, page: query.page, limit: query.limit, items: listed, cord_refs: cordRefs });
    },
  )
  .get("/chutes/:ref{.+}", requireUser({ purpose: PURPOSE, scope: scopeFromPath }), async (c) => {
    const { ref } = pathParams(c, objectRef);
    const chute = await findChute(c.var.deps.db, c.var.auth.user, ref);
    if (!chute) throw notFound();
    return c.json(await single(c.var.deps.db, chute));
  })
  .put("/chutes/:ref{.+}", requireUser({ scope: scopeFromPath }), async (c) => {
    const { ref } = pathParams(c, objectRef);
    const body = await jsonBody(c, updateChuteBody);
    const result = await updateChute(c.var.deps.db, c.var.auth.user, ref, {
      tagline: body.tagline,
      readme: body.readme,
      toolDescription: body.tool_description,
      logoId: body.logo_id,
    });
    if (!result.ok) {
      throw result.reason === "not_found"
        ? notFound()
        : new ApiError("bad_request", `Logo ${body.logo_id} not found, or does not belong to you`);
    }
    return c.json(await single(c.var.deps.db, result.chute));
  })
  .delete("/chutes/:ref{.+}", requireUser({ purpose: PURPOSE, scope: scopeFromPath }), async (c) => {
    const { ref } = pathParams(c, objectRef);
    const chute = await deleteChute(c.var.deps.db, c.var.auth.user, ref);
    if (!chute) throw notFound();
    await publishMinerEvent(c.var, {
      reason: "chute_deleted",
      data: { chute_id: chute.chuteId, version: chute.version },
    });
    return c.json({ chute_id: chute.chuteId, deleted: true });
  });

/** `POST /chutes/share` / `unshare` (upstream HEAD's routes): the owner grants or revokes a named user's access. */
async function share(c: Context<AuthEnv>, shared: boolean) {
  const body = await jsonBody(c, shareChuteBody);
  const result = await setChuteShare(
    c.var.deps.db,
    c.var.auth.user,
    body.chute_id_or_name,
    body.user_id_or_name,
    shared,
  );
  if (!result.ok) {
    if (result.reason === "chute_not_found") throw notFound();
    if (result.reason === "user_not_found") throw new ApiError("not_found", `User ${body.user_id_or_name} not found`);
    throw new ApiError("bad_request", "A chute is always available to its owner; share it with someone else.");
  }
  return c.json({ chute_id: result.chuteId, user_id: result.userId, shared });
}
