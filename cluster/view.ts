/**
 * The cluster view the rules read: read-only, answering from memory. Issue 4
 * feeds it from informers; tests and a service with no cluster build it from
 * plain objects.
 */
import type { KubeObject } from "../webhooks/envelope.js";

export interface NamespaceFacts {
  name: string;
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
}

export interface ClusterView {
  /** True once every source has been listed at least once. */
  readonly synced: boolean;
  namespace(name: string): NamespaceFacts | undefined;
}

function factsOf(object: KubeObject): NamespaceFacts {
  return {
    name: object.metadata?.name ?? "",
    labels: object.metadata?.labels ?? {},
    annotations: object.metadata?.annotations ?? {},
  };
}

/** A view over a fixed set of objects. */
export class StaticView implements ClusterView {
  private readonly namespaces = new Map<string, NamespaceFacts>();

  constructor(
    objects: { namespaces?: KubeObject[] } = {},
    readonly synced = true,
  ) {
    for (const ns of objects.namespaces ?? []) {
      const facts = factsOf(ns);
      this.namespaces.set(facts.name, facts);
    }
  }

  namespace(name: string): NamespaceFacts | undefined {
    return this.namespaces.get(name);
  }
}
