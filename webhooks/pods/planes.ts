/**
 * Network planes for pods (seed 000): a pod whose subnet names a plane can
 * only land on a node that declares it, and records the encap IP it uses there.
 */
import type { V1Affinity, V1NodeSelectorTerm } from "@kubernetes/client-node";
import { annotationsOf } from "../../domain/annotations.js";
import type { KubeObject } from "../../domain/kube.js";
import { ENCAP_IP_ANNOTATION, planeLabel } from "../../domain/planes.js";
import type { RuleSettings } from "../../domain/settings.js";
import { subnetOfPod } from "../../domain/subnets.js";
import type { ClusterView } from "../../domain/view.js";

export interface PodPlane {
  plane: string;
  /** The subnet whose spec.nodeNetwork names it. */
  subnet: string;
}

/** The plane the pod's subnet names, with the subnet, when there is one. */
export function planeOf(
  namespace: string,
  pod: KubeObject | null,
  view: ClusterView,
  settings: Pick<RuleSettings, "defaultSubnet">,
): PodPlane | undefined {
  const subnet = subnetOfPod(namespace, annotationsOf(pod), view, settings.defaultSubnet);
  return subnet?.nodeNetwork ? { plane: subnet.nodeNetwork, subnet: subnet.name } : undefined;
}

/** Why `node` cannot take a pod of `plane`, or undefined when it can. */
export function lacksPlane(node: string, plane: PodPlane, view: ClusterView): string | undefined {
  if (view.planesOf(node)[plane.plane] !== undefined) return undefined;
  const having = view.nodesWithPlane(plane.plane).sort();
  return (
    `node ${node} does not declare plane ${plane.plane}, which subnet ${plane.subnet} uses (spec.nodeNetwork); ` +
    (having.length
      ? `nodes that do: ${having.slice(0, 5).join(", ")}${having.length > 5 ? ` and ${having.length - 5} more` : ""}`
      : "no node does")
  );
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

/**
 * A pod whose subnet names a plane may only be scheduled where the plane is;
 * one already placed records its encap IP, which its OVS interface gets once
 * the pod is stored.
 */
export function placeOnPlane(pod: KubeObject, plane: PodPlane, view: ClusterView): void {
  const spec = (pod.spec ??= {}) as { affinity?: V1Affinity; nodeName?: string };
  spec.affinity = requirePlane(spec.affinity, plane.plane);
  const encapIp = spec.nodeName ? view.planesOf(spec.nodeName)[plane.plane] : undefined;
  const name = pod.metadata?.name;
  if (!spec.nodeName || !encapIp || !name) return;
  pod.metadata = {
    ...pod.metadata,
    annotations: { ...pod.metadata?.annotations, [ENCAP_IP_ANNOTATION]: encapIp },
  };
}
