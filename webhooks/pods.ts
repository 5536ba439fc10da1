/**
 * Rules for Pods: QoS rates; the `routed` flag that drops when an EIP or SNAT
 * address changes; network planes (a pod whose subnet names a plane can only
 * land on a node that has it, and records the encap IP it uses there).
 */
import type { V1Affinity, V1NodeSelectorTerm } from "@kubernetes/client-node";
import type { ClusterView } from "../cluster/view.js";
import { ANNOTATION, annotationField, annotationsOf } from "./annotations.js";
import type { AdmissionRequest, KubeObject } from "./envelope.js";
import { ENCAP_IP_ANNOTATION, planeLabel } from "./planes.js";
import { subnetOfPod } from "./subnets.js";
import { buildPatch, editable } from "./patch.js";
import type { RuleSettings } from "./rules.js";
import { allow, deny, reject, type Intent, type Verdict } from "./verdict.js";

/** The plane the pod's subnet names, with the subnet, when there is one. */
function planeOf(namespace: string, pod: KubeObject | null, view: ClusterView, settings: RuleSettings) {
  const subnet = subnetOfPod(namespace, annotationsOf(pod), view, settings.defaultSubnet);
  return subnet?.nodeNetwork ? { plane: subnet.nodeNetwork, subnet: subnet.name } : undefined;
}

/** Why `node` cannot take a pod of `plane`, or undefined when it can. */
function lacksPlane(
  node: string,
  plane: { plane: string; subnet: string },
  view: ClusterView,
): string | undefined {
  if (view.planesOf(node)[plane.plane] !== undefined) return undefined;
  const having = view.nodesWithPlane(plane.plane).sort();
  return (
    `node ${node} does not declare plane ${plane.plane}, which subnet ${plane.subnet} uses (spec.nodeNetwork); ` +
    (having.length
      ? `nodes that do: ${having.slice(0, 5).join(", ")}${having.length > 5 ? ` and ${having.length - 5} more` : ""}`
      : "no node does")
  );
}

/** The OVS interface of a pod is named <pod>.<namespace> in external_ids:iface-id. */
function interfaceIntent(node: string, namespace: string, pod: string, encapIp: string): Intent {
  return {
    kind: "interface-encap",
    owner: `${namespace}/${pod}`,
    spec: { node, ifaceId: `${pod}.${namespace}`, encapIp },
    optional: true,
  };
}

/** Adds "has the plane label" to every required node selector term (terms are ORed, so each must carry it). */
function requirePlane(affinity: V1Affinity | undefined, plane: string): V1Affinity {
  const out: V1Affinity = affinity ?? {};
  out.nodeAffinity ??= {};
  const required = (out.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution ??= {
    nodeSelectorTerms: [],
  });
  const expression = { key: planeLabel(plane), operator: "Exists" };
  if (required.nodeSelectorTerms.length === 0)
    required.nodeSelectorTerms.push({ matchExpressions: [expression] });
  for (const term of required.nodeSelectorTerms as V1NodeSelectorTerm[]) {
    const has = term.matchExpressions?.some((e) => e.key === expression.key && e.operator === "Exists");
    if (!has) term.matchExpressions = [...(term.matchExpressions ?? []), expression];
  }
  return out;
}

/** `ovn.kubernetes.io/ingress_rate` and the per-attachment `<provider>.ovn.kubernetes.io/ingress_rate` forms. */
const RATE_KEY = /^(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?\.)?ovn\.kubernetes\.io\/(ingress|egress)_rate$/;

export function validatePod(request: AdmissionRequest, view: ClusterView, settings: RuleSettings): Verdict {
  const annotations = annotationsOf(request.object);
  for (const [key, value] of Object.entries(annotations)) {
    if (!RATE_KEY.test(key)) continue;
    if (!/^\d+$/.test(value)) {
      return reject(
        `${annotationField(key)}: expected a whole number of Mbit/s (e.g. "100"), found ${JSON.stringify(value)}`,
      );
    }
    if (Number(value) > settings.maxRateMbps) {
      return deny(
        `${annotationField(key)}: expected at most ${settings.maxRateMbps} Mbit/s, found ${JSON.stringify(value)}`,
      );
    }
  }
  const nodeName = (request.object?.spec as { nodeName?: string } | undefined)?.nodeName;
  if (request.operation === "CREATE" && nodeName) {
    const plane = planeOf(request.namespace, request.object, view, settings);
    const problem = plane && lacksPlane(nodeName, plane, view);
    if (problem) return deny(`spec.nodeName: ${problem}`);
  }
  return allow();
}

export function mutatePod(request: AdmissionRequest, view: ClusterView, settings: RuleSettings): Verdict {
  if (!request.object) return allow();
  if (request.operation === "CREATE") return placeOnPlane(request, view, settings);
  if (request.operation !== "UPDATE") return allow();
  const now = annotationsOf(request.object);
  const before = annotationsOf(request.oldObject);
  const moved = [ANNOTATION.eip, ANNOTATION.snat].filter((key) => now[key] !== before[key]);
  if (moved.length === 0 || now[ANNOTATION.routed] === undefined) return allow();
  // The NAT row follows the new address; until it is programmed the pod is not routed.
  const pod = editable(request.object);
  delete pod.metadata?.annotations?.[ANNOTATION.routed];
  return allow({
    patch: buildPatch(request.object, pod),
    warnings: [`${moved.join(" and ")} changed: ${ANNOTATION.routed} removed until the NAT row is moved`],
  });
}

/** A pod whose subnet names a plane may only be scheduled where the plane is; one already placed records its encap IP. */
function placeOnPlane(request: AdmissionRequest, view: ClusterView, settings: RuleSettings): Verdict {
  const object = request.object as KubeObject;
  const plane = planeOf(request.namespace, object, view, settings);
  if (!plane) return allow();
  const pod = editable(object);
  const spec = (pod.spec ??= {}) as { affinity?: V1Affinity; nodeName?: string };
  spec.affinity = requirePlane(spec.affinity, plane.plane);
  const intents: Intent[] = [];
  const encapIp = spec.nodeName ? view.planesOf(spec.nodeName)[plane.plane] : undefined;
  const name = object.metadata?.name;
  if (spec.nodeName && encapIp && name) {
    pod.metadata = {
      ...pod.metadata,
      annotations: { ...pod.metadata?.annotations, [ENCAP_IP_ANNOTATION]: encapIp },
    };
    intents.push(interfaceIntent(spec.nodeName, request.namespace, name, encapIp));
  }
  return allow({ patch: buildPatch(object, pod), intents });
}

/**
 * pods/binding CREATE: the scheduler (or anyone) binds a pod to a node. A
 * node without the pod's plane is refused, which closes the race with a node
 * update; otherwise the Binding carries the encap IP, and the API server
 * copies Binding annotations onto the pod.
 */
export function mutatePodBinding(
  request: AdmissionRequest,
  view: ClusterView,
  settings: RuleSettings,
): Verdict {
  const binding = request.object as KubeObject & { target?: { kind?: string; name?: string } };
  const node = binding.target?.name;
  const pod = view.pod(request.namespace, request.name);
  // A pod the view has not seen yet is judged on what we have: nothing to check.
  if (!node || !pod) return allow();
  const plane = planeOf(
    request.namespace,
    { metadata: { annotations: { ...pod.annotations } } },
    view,
    settings,
  );
  if (!plane) return allow();
  const problem = lacksPlane(node, plane, view);
  if (problem) return deny(`target.name: pod ${pod.key} cannot be bound: ${problem}`);
  const encapIp = view.planesOf(node)[plane.plane] as string;
  const edited = editable(binding);
  edited.metadata = {
    ...edited.metadata,
    annotations: { ...edited.metadata?.annotations, [ENCAP_IP_ANNOTATION]: encapIp },
  };
  return allow({
    patch: buildPatch(binding, edited),
    intents: [interfaceIntent(node, request.namespace, request.name, encapIp)],
  });
}
