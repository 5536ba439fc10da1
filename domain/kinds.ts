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
  Service: { group: "", version: "v1", resource: "services" },
  /** discovery.k8s.io/v1 from Kubernetes 1.21; v1beta1 before (ENDPOINT_SLICE_VERSIONS). */
  EndpointSlice: { group: "discovery.k8s.io", version: "v1", resource: "endpointslices" },
  Endpoints: { group: "", version: "v1", resource: "endpoints" },
} as const satisfies Record<string, KindResource>;

export type Kind = keyof typeof KIND_RESOURCES;

export const KINDS = Object.keys(KIND_RESOURCES) as Kind[];

/**
 * Kinds the view keeps only where the service is the whole control plane
 * (ovn-kubernetes model): Services and their endpoints become OVN load
 * balancers. Of EndpointSlice and Endpoints one is watched: slices where the
 * API serves them, Endpoints otherwise.
 */
export const SERVICE_KINDS = ["Service", "EndpointSlice", "Endpoints"] as const satisfies readonly Kind[];

/** The EndpointSlice versions the view reads, newest first. */
export const ENDPOINT_SLICE_VERSIONS = ["v1", "v1beta1"] as const;

export const isServiceKind = (kind: Kind): boolean => (SERVICE_KINDS as readonly Kind[]).includes(kind);

export function isKind(kind: string): kind is Kind {
  return Object.hasOwn(KIND_RESOURCES, kind);
}
