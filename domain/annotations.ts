/** Annotation keys of the contract (../shared/DESIGN.md) and the one way to read them. */
import type { KubeObject } from "./kube.js";

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

/** The external gateway ConfigMap (seed 003), "namespace/name". */
export const GATEWAY_CONFIGMAP = "kube-system/ovn-external-gw-config";

/** NetworkAttachmentDefinition annotation (seed 004): `key=value`; pods using the NAD go only to such nodes. */
export const NAD_NODE_SELECTOR = "k8s.v1.cni.cncf.io/nodeSelector";

/** Namespace annotation: the attachments its pods get when they name none themselves. */
export const DEFAULT_NETWORKS_ANNOTATION = "ovn-admission.io/default-networks";

/** Namespace label: its NetworkAttachmentDefinitions may be used by pods of any namespace. */
export const SHARED_ATTACHMENTS_LABEL = "ovn-admission.io/shared-attachments";

/** The object's annotations; an object without any has an empty map. */
export function annotationsOf(object: KubeObject | null | undefined): Readonly<Record<string, string>> {
  return object?.metadata?.annotations ?? {};
}

/** How a denial names an annotation: the path a user would edit. */
export function annotationField(key: string): string {
  return `metadata.annotations["${key}"]`;
}
