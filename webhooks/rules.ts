/**
 * Which rule answers which admission: one entry per webhook, resource,
 * subresource and operations. Admissions nobody handles are allowed untouched.
 */
import type { ClusterView } from "../cluster/view.js";
import type { AdmissionOperation, AdmissionRequest } from "./envelope.js";
import { mutatePod, validatePod } from "./pods.js";
import type { Verdict } from "./verdict.js";

export type Webhook = "mutate" | "validate";

/** Settings rules read (from the service configuration). */
export interface RuleSettings {
  /** Largest QoS rate a pod may ask for, Mbit/s. */
  maxRateMbps: number;
}

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

export const ROUTES: readonly Route[] = [
  {
    webhook: "mutate",
    group: "",
    resource: "pods",
    subResource: "",
    operations: ["UPDATE"],
    rule: mutatePod,
    name: "pods",
  },
  {
    webhook: "validate",
    group: "",
    resource: "pods",
    subResource: "",
    operations: ["CREATE", "UPDATE"],
    rule: validatePod,
    name: "pods",
  },
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
