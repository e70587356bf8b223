/**
 * @module `api.{domain}`: the REST API. Each resource is a sub-app in src/routes/.
 */
import { createHostApp } from "../app.ts";
import { apiKeysRoutes } from "../routes/api-keys.ts";
import { builderAdmin, builderJobs } from "../routes/builders.ts";
import { chutesRoutes } from "../routes/chutes.ts";
import { developerDepositRoutes } from "../routes/developer-deposit.ts";
import { exportsRoutes } from "../routes/exports.ts";
import { gpuAgentAdmin, gpuAgentJobs } from "../routes/gpu-agents.ts";
import { imagesRoutes } from "../routes/images.ts";
import { instancesRoutes } from "../routes/instances.ts";
import { apiInvocations } from "../routes/invoke.ts";
import { logosRoutes } from "../routes/logos.ts";
import { minerRoutes } from "../routes/miner.ts";
import { nodesRoutes } from "../routes/nodes.ts";
import { paymentsRoutes } from "../routes/payments.ts";
import { ping } from "../routes/ping.ts";
import { scoresRoutes } from "../routes/scores.ts";
import { usersRoutes } from "../routes/users.ts";

export const apiHost = createHostApp();
apiHost.route("/", ping);
apiHost.route("/", usersRoutes);
apiHost.route("/", apiKeysRoutes);
apiHost.route("/", developerDepositRoutes);
apiHost.route("/", gpuAgentJobs);
apiHost.route("/", gpuAgentAdmin);
apiHost.route("/", builderJobs);
apiHost.route("/", builderAdmin);
apiHost.route("/", imagesRoutes);
apiHost.route("/", apiInvocations);
apiHost.route("/", chutesRoutes);
apiHost.route("/", logosRoutes);
apiHost.route("/", exportsRoutes);
apiHost.route("/", scoresRoutes);
apiHost.route("/", paymentsRoutes);
apiHost.route("/", nodesRoutes);
apiHost.route("/", instancesRoutes);
apiHost.route("/", minerRoutes);
