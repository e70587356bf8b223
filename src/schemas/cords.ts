/**
 * @module The schema of a chute's cords (its callable endpoints) as the SDK deploys them,
 * and `Cord`, their stored shape. Depends on zod alone: the table schema types its
 * `cords` column with it, and Node-side code loads that schema.
 *
 * Cord paths take the SDK's rule (`^(/[a-z0-9]+[a-z0-9-_]*)+$`, any case), which is wider
 * than upstream's server regex: the runtime serves whatever the SDK accepted, and the
 * paths carry no dots, so nothing can climb out of a prefix.
 */
import { z } from "zod";

const CORD_PATH = /^(\/[A-Za-z0-9][A-Za-z0-9_-]*)+$/;

const jsonSchema = z
  .record(z.string(), z.unknown())
  .nullish()
  .transform((value) => value ?? {});
const httpMethod = z
  .string()
  .transform((value) => value.toUpperCase())
  .pipe(z.enum(["GET", "POST"], { message: "must be GET or POST" }));

export const cordBody = z
  .object({
    method: httpMethod.default("POST"),
    path: z.string().max(128).regex(CORD_PATH, { message: "must be /segments of letters, digits, _ and -" }),
    function: z
      .string()
      .max(128)
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: "must be a Python identifier" }),
    stream: z.boolean().default(false),
    passthrough: z.boolean().default(false),
    public_api_path: z
      .string()
      .max(128)
      .regex(CORD_PATH, { message: "must be /segments of letters, digits, _ and -" })
      .nullish()
      .transform((value) => value ?? null),
    public_api_method: httpMethod.nullish().transform((value) => value ?? null),
    input_schema: jsonSchema,
    output_schema: jsonSchema,
    minimal_input_schema: jsonSchema,
    output_content_type: z
      .string()
      .max(128)
      .nullish()
      .transform((value) => value ?? null),
  })
  .transform((cord) => ({
    ...cord,
    // A public path is served on POST unless the cord says otherwise (the SDK's default).
    public_api_method: cord.public_api_path ? (cord.public_api_method ?? "POST") : null,
  }));

export type Cord = z.output<typeof cordBody>;

export const cordList = z
  .array(cordBody)
  .min(1, { message: "a chute needs at least one cord" })
  .max(64)
  .superRefine((cords, ctx) => {
    const paths = new Set<string>();
    const publicRoutes = new Set<string>();
    cords.forEach((cord, index) => {
      if (paths.has(cord.path)) ctx.addIssue({ code: "custom", path: [index, "path"], message: "duplicate path" });
      paths.add(cord.path);
      if (!cord.public_api_path) return;
      // The stream and non-stream cords of an OpenAI route share a public path.
      const route = `${cord.public_api_method} ${cord.public_api_path} ${cord.stream}`;
      if (publicRoutes.has(route)) {
        ctx.addIssue({ code: "custom", path: [index, "public_api_path"], message: "duplicate public route" });
      }
      publicRoutes.add(route);
    });
  });
