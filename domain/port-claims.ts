/**
 * A pod's address claim, decided from the pod and its subnet (Kube-OVN's
 * primary network): which subnet, which addresses it asks for (checked
 * here), its pool and MAC. The port handler carries the claim out against
 * the database; the answer is the annotations the pod gets.
 */
import type { ClusterView } from "./view.js";
import type { PodFacts, SubnetFacts } from "./facts.js";
import { managementIpOf } from "./topology.js";
import {
  prefixOf,
  addressOf,
  addressToNumber,
  broadcastAddress,
  canonicalIp,
  cidrContains,
  excludedRanges,
  firstHostOf,
  isCidr,
  isIpAddress,
  isUnicastMac,
  networkAddress,
} from "./addresses.js";
import { ANNOTATION, annotationField } from "./annotations.js";
import type { NatClaim } from "./nat.js";
import { subnetOfPod } from "./subnets.js";
import type { NetworkModel, RuleSettings } from "./settings.js";
import type { Intent } from "./intents.js";
import { portNameOf } from "./logical-ports.js";
import { forbidden, malformed, type Violation } from "./violations.js";

/** What a claim is made from: the pod as admission saw it and its subnet as the view holds it. */
export interface PortClaim extends Record<string, unknown> {
  /** "namespace/name". */
  pod: string;
  uid: string;
  /** The logical switch port's name: `<pod>.<namespace>` (Kube-OVN). */
  port: string;
  subnet: string;
  /** The subnet's CIDRs, one per family. */
  cidrs: string[];
  /** Its gateways, in the same order. */
  gateways: string[];
  exclude: string[];
  /** Addresses the pod asks for (`ovn.kubernetes.io/ip_address`), checked against the subnet. */
  ips?: string[];
  /** `ovn.kubernetes.io/ip_pool`: the first free one is taken. */
  pool?: string[];
  mac?: string;
  /** The pod's EIP or SNAT address, claimed in the same transaction as its port. */
  nat?: NatClaim;
}

/** The annotations that say what a pod was given; once `allocated`, none of them changes. */
export const ADDRESS_ANNOTATIONS = [
  ANNOTATION.logicalSwitch,
  ANNOTATION.ipAddress,
  ANNOTATION.macAddress,
  ANNOTATION.gateway,
  ANNOTATION.cidr,
  ANNOTATION.allocated,
  ANNOTATION.ovn,
] as const;

const list = (text: string | undefined): string[] =>
  (text ?? "")
    .split(/[,;]/)
    .map((s) => s.trim())
    .filter(Boolean);

/** Why `ip` cannot be a pod's address in `subnet`, or undefined when it can. */
function addressProblem(
  ip: string,
  subnet: Pick<SubnetFacts, "name" | "cidrBlock" | "gateway" | "excludeIps">,
): string | undefined {
  const cidrs = list(subnet.cidrBlock);
  const cidr = cidrs.find((c) => cidrContains(c, ip));
  if (!cidr) return `${ip} is outside subnet ${subnet.name} (${cidrs.join(",")})`;
  if (canonicalIp(ip) === networkAddress(cidr))
    return `${ip} is the network address of subnet ${subnet.name}`;
  if (ip === broadcastAddress(cidr)) return `${ip} is the broadcast address of subnet ${subnet.name}`;
  if (list(subnet.gateway).some((g) => canonicalIp(addressOf(g)) === canonicalIp(ip)))
    return `${ip} is the gateway of subnet ${subnet.name}`;
  const n = addressToNumber(ip);
  if (excludedRanges(subnet.excludeIps).some((r) => n >= r.from && n <= r.to))
    return `${ip} is excluded from subnet ${subnet.name} (spec.excludeIps)`;
  return undefined;
}

/**
 * The port claim of a pod whose node is now known (CREATE with
 * spec.nodeName, or its binding); undefined when there is nothing to claim
 * (already allocated, or no subnet the view knows), a violation when what it
 * asks for cannot be given.
 */
export function portClaimOf(
  namespace: string,
  name: string,
  uid: string,
  annotations: Readonly<Record<string, string>>,
  view: ClusterView,
  settings: Pick<RuleSettings, "defaultSubnet" | "networkModel">,
  node: string,
): Intent | Violation | undefined {
  if (annotations[ANNOTATION.allocated] === "true") return undefined;
  const subnet = subnetForPod(namespace, annotations, view, settings, node);
  if (!subnet?.cidrBlock) return undefined;
  const ips = list(annotations[ANNOTATION.ipAddress]).map(addressOf);
  for (const ip of ips) {
    const field = annotationField(ANNOTATION.ipAddress);
    if (!isIpAddress(ip)) return malformed(`${field}: expected IP addresses, found ${JSON.stringify(ip)}`);
    const problem = addressProblem(ip, subnet);
    if (problem) return forbidden(`${field}: ${problem}`);
  }
  const pool = list(annotations[ANNOTATION.ipPool]);
  const notAddress = pool.find((ip) => !isIpAddress(ip));
  if (notAddress !== undefined)
    return malformed(
      `${annotationField(ANNOTATION.ipPool)}: expected IP addresses, found ${JSON.stringify(notAddress)}`,
    );
  const mac = annotations[ANNOTATION.macAddress];
  if (mac !== undefined && !isUnicastMac(mac))
    return malformed(
      `${annotationField(ANNOTATION.macAddress)}: expected a unicast MAC (e.g. "0a:58:0a:10:00:05"), found ${JSON.stringify(mac)}`,
    );
  const claim: PortClaim = {
    pod: `${namespace}/${name}`,
    uid,
    port: portNameOf(namespace, name, settings.networkModel),
    subnet: subnet.name,
    cidrs: list(subnet.cidrBlock),
    gateways: list(subnet.gateway),
    exclude: [...subnet.excludeIps],
    ...(ips.length ? { ips } : {}),
    ...(pool.length ? { pool } : {}),
    ...(mac ? { mac } : {}),
  };
  return { kind: "port-claim", owner: claim.pod, spec: claim, preview: true };
}

/**
 * The subnet a pod's address comes from: Kube-OVN's (its annotation, its
 * namespace's, the default); under ovn-kubernetes its node's switch, from
 * the node's `ovn_host_subnet` (undefined until the node has one).
 */
function subnetForPod(
  namespace: string,
  annotations: Readonly<Record<string, string>>,
  view: ClusterView,
  settings: Pick<RuleSettings, "defaultSubnet" | "networkModel">,
  node: string,
): Pick<SubnetFacts, "name" | "cidrBlock" | "gateway" | "excludeIps"> | undefined {
  if (settings.networkModel !== "ovn-kubernetes")
    return subnetOfPod(namespace, annotations, view, settings.defaultSubnet);
  const hostSubnet = view.node(node)?.annotations[ANNOTATION.hostSubnet];
  if (!hostSubnet || !isCidr(hostSubnet)) return undefined;
  // The second address is the node's management port's (k8s-<node>).
  return {
    name: node,
    cidrBlock: hostSubnet,
    gateway: firstHostOf(hostSubnet),
    excludeIps: [managementIpOf(hostSubnet)],
  };
}

/** A claim is an intent; what cannot be given is a violation. */
export function isIntent(decided: Intent | Violation | undefined): decided is Intent {
  return decided !== undefined && "kind" in decided;
}

/** The port a stored pod asks for, from its annotations; undefined until it is allocated. */
export function storedPortOf(pod: PodFacts, model: NetworkModel = "kube-ovn") {
  const a = pod.annotations;
  if (a[ANNOTATION.allocated] !== "true" || !a[ANNOTATION.logicalSwitch] || !a[ANNOTATION.macAddress])
    return undefined;
  const ips = list(a[ANNOTATION.ipAddress]).map(addressOf).filter(isIpAddress);
  if (ips.length === 0 || !isUnicastMac(a[ANNOTATION.macAddress] as string)) return undefined;
  return {
    pod: pod.key,
    port: portNameOf(pod.namespace, pod.name, model),
    uid: pod.uid,
    resourceVersion: pod.resourceVersion,
    subnet: a[ANNOTATION.logicalSwitch] as string,
    ips,
    mac: a[ANNOTATION.macAddress] as string,
  };
}

/**
 * The annotations a pod gets for its port: Kube-OVN's, and seed 002's `ovn`
 * JSON. Beside a running kube-ovn-controller (`request`), only what asks it
 * for that address (its static-IP annotations): it allocates, makes the port
 * and marks the pod allocated itself.
 */
export function portAnnotations(
  claim: PortClaim,
  ips: string[],
  mac: string,
  request = false,
): Record<string, string> {
  if (request)
    return {
      [ANNOTATION.logicalSwitch]: claim.subnet,
      [ANNOTATION.ipAddress]: ips.join(","),
      [ANNOTATION.macAddress]: mac,
    };
  const prefixed = ips.map((ip, i) => `${ip}/${prefixOf(claim.cidrs[i] as string)}`);
  return {
    [ANNOTATION.logicalSwitch]: claim.subnet,
    [ANNOTATION.ipAddress]: ips.join(","),
    [ANNOTATION.macAddress]: mac,
    [ANNOTATION.gateway]: claim.gateways.join(","),
    [ANNOTATION.cidr]: claim.cidrs.join(","),
    [ANNOTATION.allocated]: "true",
    [ANNOTATION.ovn]: JSON.stringify({
      ip_address: prefixed.join(","),
      mac_address: mac,
      gateway_ip: claim.gateways.join(","),
    }),
  };
}
