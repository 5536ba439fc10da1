/** Rules for Kube-OVN Subnets (and VpcNatGateways). */
import type { ClusterView } from "../domain/view.js";
import type { AdmissionRequest } from "./envelope.js";
import { isPlaneName } from "../domain/planes.js";
import { cidrContains, cidrsOverlap, isCidr, isIpAddress } from "../domain/addresses.js";
import type { RuleSettings } from "../domain/settings.js";
import { didYouMean } from "../domain/spelling.js";
import { allow, deny, refuse, reject, type Verdict } from "./verdict.js";
import { forbidden, malformed, type Violation } from "../domain/violations.js";

import { DEFAULT_VPC } from "../domain/subnets.js";

/** What a group of checks found: violations, and warnings for what is allowed but worth saying. */
interface Checked {
  violations: Violation[];
  warnings: string[];
}

/** provider, vpc and CIDR: the attachment a provider names exists, the VPC exists, no overlap inside one VPC. */
function checkPlacement(request: AdmissionRequest, view: ClusterView): Checked {
  const spec = (request.object?.spec ?? {}) as { provider?: unknown; vpc?: unknown; cidrBlock?: unknown };
  const name = request.object?.metadata?.name ?? request.name;
  const found: Checked = { violations: [], warnings: [] };
  if (
    typeof spec.provider === "string" &&
    spec.provider !== "" &&
    spec.provider !== "ovn" &&
    view.knows("NetworkAttachmentDefinition")
  ) {
    if (view.nadsWithProvider(spec.provider).length === 0) {
      found.warnings.push(
        `spec.provider: no NetworkAttachmentDefinition has provider ${spec.provider} yet; pods cannot attach to this subnet until one does`,
      );
    }
  }
  const vpc = typeof spec.vpc === "string" && spec.vpc !== "" ? spec.vpc : DEFAULT_VPC;
  if (vpc !== DEFAULT_VPC && view.knows("Vpc") && !view.vpc(vpc))
    found.violations.push(forbidden(`spec.vpc: Vpc ${vpc} does not exist`));
  if (typeof spec.cidrBlock === "string" && spec.cidrBlock !== "") {
    const mine = spec.cidrBlock.split(",").map((c) => c.trim());
    const notNetworks = mine.filter((cidr) => !isCidr(cidr));
    for (const cidr of notNetworks)
      found.violations.push(
        malformed(`spec.cidrBlock: ${JSON.stringify(cidr)} is not a network in CIDR notation`),
      );
    if (notNetworks.length > 0) return found;
    for (const other of view.subnets()) {
      if (other.name === name || (other.vpc || DEFAULT_VPC) !== vpc || !other.cidrBlock) continue;
      for (const theirs of other.cidrBlock.split(",").map((c) => c.trim())) {
        const clash = mine.find((c) => cidrsOverlap(c, theirs));
        if (clash)
          found.violations.push(
            forbidden(`spec.cidrBlock: ${clash} overlaps ${theirs} of subnet ${other.name} in Vpc ${vpc}`),
          );
      }
    }
  }
  return found;
}

/** Kube-OVN's SubnetSpec fields (kubeovn.io/v1), and seed 000's nodeNetwork. */
const SUBNET_SPEC_KEYS = [
  "default",
  "vpc",
  "protocol",
  "namespaces",
  "namespaceSelectors",
  "cidrBlock",
  "gateway",
  "excludeIps",
  "provider",
  "gatewayType",
  "gatewayNode",
  "natOutgoing",
  "natOutgoingPolicyRules",
  "externalEgressGateway",
  "policyRoutingPriority",
  "policyRoutingTableID",
  "mtu",
  "private",
  "allowSubnets",
  "vlan",
  "vips",
  "logicalGateway",
  "disableGatewayCheck",
  "disableInterConnection",
  "enableDHCP",
  "dhcpV4Options",
  "dhcpV6Options",
  "enableIPv6RA",
  "ipv6RAConfigs",
  "acls",
  "u2oInterconnection",
  "u2oInterconnectionIP",
  "enableLb",
  "enableEcmp",
  "routeTable",
  "nodeNetwork",
];

/** spec keys Kube-OVN does not know: a typo of a missing known key is refused ("did you mean"), others are warned. */
function checkSpecKeys(spec: Record<string, unknown>): Checked {
  const found: Checked = { violations: [], warnings: [] };
  for (const key of Object.keys(spec)) {
    if (SUBNET_SPEC_KEYS.includes(key)) continue;
    const meant = didYouMean(key, SUBNET_SPEC_KEYS, { prefixes: true });
    if (meant && !(meant in spec))
      found.violations.push(
        malformed(
          `spec.${key}: did you mean "${meant}"? a Subnet has no field ${JSON.stringify(key)}, and ${meant} is not set`,
        ),
      );
    else
      found.warnings.push(
        `spec.${key}: not a Subnet field Kube-OVN knows; it is ignored${meant ? ` (did you mean "${meant}"?)` : ""}`,
      );
  }
  return found;
}

/** A Subnet whose pods still hold addresses cannot go: their ports would lose their switch. */
function checkDelete(request: AdmissionRequest, view: ClusterView): Verdict {
  const name = request.oldObject?.metadata?.name ?? request.name;
  const pods = view.podsInSubnet(name);
  if (pods.length === 0) return allow();
  const named = pods
    .map((p) => p.key)
    .sort()
    .slice(0, 3)
    .join(", ");
  return deny(
    `subnet ${name} still has ${pods.length} pod${pods.length === 1 ? "" : "s"} with addresses in it (${named}${pods.length > 3 ? ` and ${pods.length - 3} more` : ""}); delete them first`,
  );
}

export function validateSubnet(
  request: AdmissionRequest,
  view: ClusterView,
  _settings: RuleSettings,
): Verdict {
  if (request.operation === "DELETE") return checkDelete(request, view);
  const checks = [
    checkSpecKeys((request.object?.spec ?? {}) as Record<string, unknown>),
    checkPlacement(request, view),
    checkPlane(request, view),
  ];
  const violations = checks.flatMap((c) => c.violations);
  if (violations.length > 0) return refuse(violations);
  return allow({ warnings: checks.flatMap((c) => c.warnings) });
}

function checkPlane(request: AdmissionRequest, view: ClusterView): Checked {
  const spec = (request.object?.spec ?? {}) as { nodeNetwork?: unknown; vlan?: unknown };
  const plane = spec.nodeNetwork;
  const found: Checked = { violations: [], warnings: [] };
  if (plane === undefined || plane === "") return found;
  if (typeof plane !== "string" || !isPlaneName(plane)) {
    found.violations.push(
      malformed(`spec.nodeNetwork: expected a plane name (a DNS label), found ${JSON.stringify(plane)}`),
    );
    return found;
  }
  if (typeof spec.vlan === "string" && spec.vlan !== "") {
    found.violations.push(
      forbidden(
        `spec.nodeNetwork: only overlay subnets can use a network plane, and this subnet is underlay (spec.vlan ${JSON.stringify(spec.vlan)}); remove nodeNetwork or vlan`,
      ),
    );
  }
  const having = view.nodesWithPlane(plane);
  if (having.length === 0) {
    const planes = view.planes();
    found.violations.push(
      forbidden(
        `spec.nodeNetwork: no node declares plane ${JSON.stringify(plane)} in ovn.kubernetes.io/node_networks; ` +
          (planes.length ? `planes that exist: ${planes.join(", ")}` : "no node declares any plane yet"),
      ),
    );
    return found;
  }
  const nodes = view.sizes().Node ?? 0;
  const lacking = nodes - having.length;
  if (lacking > 0) {
    found.warnings.push(
      `plane ${plane} is declared by ${having.length} of ${nodes} nodes: ${lacking} lack it, and pods of this subnet will not be scheduled there`,
    );
  }
  return found;
}

/** VpcNatGateway: its subnet is in its Vpc, and its lanIp an unused address of that subnet other than the gateway. */
export function validateVpcNatGateway(
  request: AdmissionRequest,
  view: ClusterView,
  _settings: RuleSettings,
): Verdict {
  const spec = (request.object?.spec ?? {}) as { vpc?: unknown; subnet?: unknown; lanIp?: unknown };
  if (typeof spec.subnet !== "string" || spec.subnet === "")
    return reject(`spec.subnet: expected a subnet name, found ${JSON.stringify(spec.subnet)}`);
  const subnet = view.subnet(spec.subnet);
  if (!subnet)
    return view.knows("Subnet") ? deny(`spec.subnet: Subnet ${spec.subnet} does not exist`) : allow();
  const violations: Violation[] = [];
  const vpc = typeof spec.vpc === "string" && spec.vpc !== "" ? spec.vpc : DEFAULT_VPC;
  if ((subnet.vpc || DEFAULT_VPC) !== vpc)
    violations.push(
      forbidden(
        `spec.subnet: Subnet ${subnet.name} belongs to Vpc ${subnet.vpc || DEFAULT_VPC}, not to spec.vpc ${vpc}`,
      ),
    );
  violations.push(...lanIpViolations(spec.lanIp, subnet, view));
  return violations.length > 0 ? refuse(violations) : allow();
}

/** The gateway's LAN address: an address of its subnet, not the subnet's gateway, held by no pod. */
function lanIpViolations(
  lanIp: unknown,
  subnet: { name: string; cidrBlock: string; gateway: string },
  view: ClusterView,
): Violation[] {
  if (typeof lanIp !== "string" || !isIpAddress(lanIp))
    return [malformed(`spec.lanIp: expected an IP address, found ${JSON.stringify(lanIp)}`)];
  const inside = subnet.cidrBlock.split(",").some((c) => cidrContains(c.trim(), lanIp));
  if (!inside)
    return [forbidden(`spec.lanIp: ${lanIp} is outside subnet ${subnet.name} (${subnet.cidrBlock})`)];
  if (subnet.gateway.split(",").includes(lanIp))
    return [forbidden(`spec.lanIp: ${lanIp} is the gateway of subnet ${subnet.name}`)];
  const holders = view.podsWithStaticIp(lanIp);
  if (holders.length > 0)
    return [forbidden(`spec.lanIp: ${lanIp} is held by pod ${holders.map((p) => p.key).join(", ")}`)];
  return [];
}
