/**
 * The one answer to "which subnet is this pod in": `ovn.kubernetes.io/logical_switch`,
 * else the subnet whose `spec.namespaces` holds the pod's namespace, else the
 * default subnet.
 */
import { ANNOTATION } from "./annotations.js";
import type { SubnetFacts } from "./facts.js";
import type { ClusterView } from "./view.js";

export function subnetOfPod(
  namespace: string,
  annotations: Readonly<Record<string, string>>,
  view: ClusterView,
  defaultSubnet: string,
): SubnetFacts | undefined {
  const named = annotations[ANNOTATION.logicalSwitch];
  if (named) return view.subnet(named);
  const [byNamespace] = view.subnetsOfNamespace(namespace).sort((a, b) => a.name.localeCompare(b.name));
  return byNamespace ?? view.subnet(defaultSubnet);
}

/** Kube-OVN's default VPC: subnets that name none are in it. */
export const DEFAULT_VPC = "ovn-cluster";
