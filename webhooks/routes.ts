/**
 * Which rule answers which admission: one entry per webhook, resource,
 * subresource and operations. Admissions nobody handles are allowed untouched.
 */
import type { ClusterView } from "../domain/view.js";
import type { AdmissionOperation, AdmissionRequest } from "./envelope.js";
import { mutateNode, validateNode } from "./nodes.js";
import { mutatePod, mutatePodBinding, validatePod } from "./pods.js";
import { validateSubnet, validateVpcNatGateway } from "./subnets.js";
import { validateNad } from "./nads.js";
import { validateConfigMap } from "./configmaps.js";
import type { Verdict } from "./verdict.js";

export type Webhook = "mutate" | "validate";

import type { RuleSettings } from "../domain/settings.js";

export type Rule = (request: AdmissionRequest, view: ClusterView, settings: RuleSettings) => Verdict;

export interface Route {
  webhook: Webhook;
  group: string;
  resource: string;
  /** "" for the resource itself. */
  subResource: string;
  operations: readonly AdmissionOperation[];
  rule: Rule;
  /** Name for logs and metrics, e.g. "pods". */
  name: string;
}

const route = (
  webhook: Webhook,
  group: string,
  resource: string,
  subResource: string,
  operations: readonly AdmissionOperation[],
  rule: Rule,
): Route => ({
  webhook,
  group,
  resource,
  subResource,
  operations,
  rule,
  name: subResource ? `${resource}/${subResource}` : resource,
});

export const ROUTES: readonly Route[] = [
  route("mutate", "", "pods", "", ["CREATE", "UPDATE"], mutatePod),
  route("validate", "", "pods", "", ["CREATE", "UPDATE"], validatePod),
  route("mutate", "", "pods", "binding", ["CREATE"], mutatePodBinding),
  route("mutate", "", "nodes", "", ["CREATE", "UPDATE"], mutateNode),
  route("validate", "", "nodes", "", ["CREATE", "UPDATE"], validateNode),
  route("validate", "kubeovn.io", "subnets", "", ["CREATE", "UPDATE", "DELETE"], validateSubnet),
  route("validate", "kubeovn.io", "vpc-nat-gateways", "", ["CREATE", "UPDATE"], validateVpcNatGateway),
  route("validate", "", "configmaps", "", ["CREATE", "UPDATE"], validateConfigMap),
  route(
    "validate",
    "k8s.cni.cncf.io",
    "network-attachment-definitions",
    "",
    ["CREATE", "UPDATE", "DELETE"],
    validateNad,
  ),
];

export function routeFor(
  routes: readonly Route[],
  webhook: Webhook,
  request: AdmissionRequest,
): Route | undefined {
  return routes.find(
    (r) =>
      r.webhook === webhook &&
      r.group === request.resource.group &&
      r.resource === request.resource.resource &&
      r.subResource === request.subResource &&
      r.operations.includes(request.operation),
  );
}
