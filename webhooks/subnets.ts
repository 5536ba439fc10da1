/**
 * Rules for Kube-OVN Subnets, and the one answer to "which subnet is this
 * pod in": `ovn.kubernetes.io/logical_switch`, else the subnet whose
 * `spec.namespaces` holds the pod's namespace, else the default subnet.
 */
import type { ClusterView, SubnetFacts } from "../cluster/view.js";
import type { AdmissionRequest } from "./envelope.js";
import { ANNOTATION } from "./annotations.js";
import { isPlaneName } from "./planes.js";
import type { RuleSettings } from "./rules.js";
import { allow, deny, reject, type Verdict } from "./verdict.js";

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

export function validateSubnet(
  request: AdmissionRequest,
  view: ClusterView,
  _settings: RuleSettings,
): Verdict {
  const spec = (request.object?.spec ?? {}) as { nodeNetwork?: unknown; vlan?: unknown };
  const plane = spec.nodeNetwork;
  if (plane === undefined || plane === "") return allow();
  if (typeof plane !== "string" || !isPlaneName(plane)) {
    return reject(`spec.nodeNetwork: expected a plane name (a DNS label), found ${JSON.stringify(plane)}`);
  }
  if (typeof spec.vlan === "string" && spec.vlan !== "") {
    return deny(
      `spec.nodeNetwork: only overlay subnets can use a network plane, and this subnet is underlay (spec.vlan ${JSON.stringify(spec.vlan)}); remove nodeNetwork or vlan`,
    );
  }
  const having = view.nodesWithPlane(plane);
  if (having.length === 0) {
    const planes = view.planes();
    return deny(
      `spec.nodeNetwork: no node declares plane ${JSON.stringify(plane)} in ovn.kubernetes.io/node_networks; ` +
        (planes.length ? `planes that exist: ${planes.join(", ")}` : "no node declares any plane yet"),
    );
  }
  const nodes = view.sizes().Node ?? 0;
  const lacking = nodes - having.length;
  if (lacking > 0) {
    return allow({
      warnings: [
        `plane ${plane} is declared by ${having.length} of ${nodes} nodes: ${lacking} lack it, and pods of this subnet will not be scheduled there`,
      ],
    });
  }
  return allow();
}
