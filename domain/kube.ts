/** Kubernetes objects as the service reads them: the names of a resource and an object whose metadata is typed. */
import type { V1ObjectMeta } from "@kubernetes/client-node";

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}
export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

/** Any Kubernetes object as it arrives: typed metadata, the rest left to each resource's rules. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
  [field: string]: unknown;
}
