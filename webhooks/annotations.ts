/** Annotation keys of the contract (../shared/DESIGN.md) and the one way to read them. */
import type { KubeObject } from "./envelope.js";

export const ANNOTATION = {
  logicalSwitch: "ovn.kubernetes.io/logical_switch",
  ipAddress: "ovn.kubernetes.io/ip_address",
  macAddress: "ovn.kubernetes.io/mac_address",
  gateway: "ovn.kubernetes.io/gateway",
  cidr: "ovn.kubernetes.io/cidr",
  allocated: "ovn.kubernetes.io/allocated",
  ipPool: "ovn.kubernetes.io/ip_pool",
  /** ovn-kubernetes (seed 002): a Node's subnet, carved from --cluster-ip-subnet. */
  hostSubnet: "ovn_host_subnet",
  /** ovn-kubernetes (seed 002): JSON with ip_address (with prefix), mac_address and gateway_ip. */
  ovn: "ovn",
  eip: "ovn.kubernetes.io/eip",
  snat: "ovn.kubernetes.io/snat",
  routed: "ovn.kubernetes.io/routed",
  ingressRate: "ovn.kubernetes.io/ingress_rate",
  egressRate: "ovn.kubernetes.io/egress_rate",
  nodeNetworks: "ovn.kubernetes.io/node_networks",
  tunnelInterface: "ovn.kubernetes.io/tunnel_interface",
  networks: "k8s.v1.cni.cncf.io/networks",
} as const;

/** The object's annotations; an object without any has an empty map. */
export function annotationsOf(object: KubeObject | null | undefined): Readonly<Record<string, string>> {
  return object?.metadata?.annotations ?? {};
}

/** How a denial names an annotation: the path a user would edit. */
export function annotationField(key: string): string {
  return `metadata.annotations["${key}"]`;
}
