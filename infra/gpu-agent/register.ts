/**
 * @module `npm run gpu-agent:register -- --name NAME --public-key HEX [--replace]`: registers
 * a GPU agent's Ed25519 public key in the database at DATABASE_URL and prints its agent_id
 * (the agent's GPU_AGENT_ID). Stands in for the admin HTTP route until admin
 * authentication exists; it needs direct database access, which only operators have.
 */
import { parseArgs } from "node:util";
import { check } from "../../src/lib/validation.ts";
import { registerAgentSchema } from "../../src/schemas/gpu-agents.ts";
import { registerGpuAgent } from "../../src/services/gpu-agents.ts";
import { withDatabase } from "../dev/database.ts";
import { redact } from "../dev/services.ts";

const { values } = parseArgs({
  options: { name: { type: "string" }, "public-key": { type: "string" }, replace: { type: "boolean", default: false } },
});
const url = process.env.DATABASE_URL;
try {
  if (!url) throw new Error("DATABASE_URL is not set");
  const input = check(registerAgentSchema, { name: values.name, public_key: values["public-key"] }, "args");
  const agent = await withDatabase(url, (db) =>
    registerGpuAgent(db, { name: input.name, publicKey: input.public_key, replace: values.replace }),
  );
  console.log(JSON.stringify({ agent_id: agent.agentId, name: agent.name, public_key: agent.publicKey }));
  console.error(`registered GPU agent ${agent.name} in ${redact(url)}: set GPU_AGENT_ID=${agent.agentId}`);
} catch (error) {
  const detail = (error as { errors?: { loc: unknown[]; msg: string }[] }).errors;
  console.error(`gpu-agent:register failed: ${(error as Error).message}`);
  for (const issue of detail ?? []) console.error(`  ${issue.loc.join(".")}: ${issue.msg}`);
  process.exit(1);
}
