/**
 * @module `api.{domain}`: the REST API. Each resource is a sub-app in src/routes/.
 */
import { createHostApp } from "../app.ts";
import { adminAuthPending, gpuAgentAdmin, gpuAgentJobs } from "../routes/gpu-agents.ts";
import { ping } from "../routes/ping.ts";

export const apiHost = createHostApp();
apiHost.route("/", ping);
apiHost.route("/", gpuAgentJobs);
apiHost.route("/", gpuAgentAdmin(adminAuthPending));
