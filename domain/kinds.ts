/**
 * The kinds of object the view keeps, in one table: what the API calls each
 * (group, version, resource), and for the gateway ConfigMap the one object of
 * its kind that matters. The informers list and watch from it, `check` names
 * resources from it, the facts are keyed by it.
 */
import { GATEWAY_CONFIGMAP } from "./annotations.js";

export interface KindResource {
  group: string;
  version: string;
  /** The plural the API serves it under. */
  resource: string;
  /** Only this object ("namespace/name") is of interest: the view watches it alone. */
  only?: string;
}

export const KIND_RESOURCES = {
  Node: { group: "", version: "v1", resource: "nodes" },
  Namespace: { group: "", version: "v1", resource: "namespaces" },
  Pod: { group: "", version: "v1", resource: "pods" },
  Subnet: { group: "kubeovn.io", version: "v1", resource: "subnets" },
  Vpc: { group: "kubeovn.io", version: "v1", resource: "vpcs" },
  VpcNatGateway: { group: "kubeovn.io", version: "v1", resource: "vpc-nat-gateways" },
  NetworkAttachmentDefinition: {
    group: "k8s.cni.cncf.io",
    version: "v1",
    resource: "network-attachment-definitions",
  },
  ConfigMap: { group: "", version: "v1", resource: "configmaps", only: GATEWAY_CONFIGMAP },
} as const satisfies Record<string, KindResource>;

export type Kind = keyof typeof KIND_RESOURCES;

export const KINDS = Object.keys(KIND_RESOURCES) as Kind[];

export function isKind(kind: string): kind is Kind {
  return Object.hasOwn(KIND_RESOURCES, kind);
}
