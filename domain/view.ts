/**
 * The cluster view the rules read: read-only, answering from memory, with an
 * index for every question a rule asks. cluster/state.ts keeps it from the
 * informers; tests and a service with no cluster build it from plain objects.
 */
import type {
  ConfigMapFacts,
  EndpointSliceFacts,
  ServiceFacts,
  FactsByKind,
  NadFacts,
  NamespaceFacts,
  NodeFacts,
  PodFacts,
  SubnetFacts,
} from "./facts.js";
import type { Kind } from "./kinds.js";

export interface ClusterView {
  /** True once every source has been listed at least once. */
  readonly synced: boolean;
  /** True when objects of `kind` were listed (or given): only then does "not found" mean "does not exist". */
  knows(kind: Kind): boolean;
  namespace(name: string): NamespaceFacts | undefined;
  node(name: string): NodeFacts | undefined;
  /** The node's planes: `ovn.kubernetes.io/node_networks` as parsed (empty when absent or malformed). */
  planesOf(node: string): Readonly<Record<string, string>>;
  /** Nodes that declare `plane`. */
  nodesWithPlane(plane: string): string[];
  /** Every plane some node declares. */
  planes(): string[];
  /** Nodes that declare at least one plane. */
  nodesWithPlanes(): NodeFacts[];
  /** Pods that record the encap IP they use (`ovn-admission.io/encap-ip`). */
  podsWithEncapIp(): PodFacts[];
  /** Nodes that use `ip` as an encap IP. */
  nodesWithEncapIp(ip: string): string[];
  pod(namespace: string, name: string): PodFacts | undefined;
  podsOnNode(node: string): PodFacts[];
  /** Pods whose `ovn.kubernetes.io/eip` is `ip`. */
  podsWithEip(ip: string): PodFacts[];
  /** Pods whose `ovn.kubernetes.io/snat` is `ip`. */
  podsWithSnat(ip: string): PodFacts[];
  /** Pods with an EIP or an SNAT address. */
  podsWithNat(): PodFacts[];
  /** Every node. */
  nodes(): NodeFacts[];
  /** Pods given an address in the subnet (`ovn.kubernetes.io/logical_switch` with `allocated`). */
  podsInSubnet(subnet: string): PodFacts[];
  /** Every pod given an address. */
  podsWithAddresses(): PodFacts[];
  /** Pods that hold `ip` as a static address (`ip_address`, its provider forms, or an attachment's `ips`). */
  podsWithStaticIp(ip: string): PodFacts[];
  subnet(name: string): SubnetFacts | undefined;
  vpc(name: string): FactsByKind["Vpc"] | undefined;
  subnets(): SubnetFacts[];
  /** Subnets whose `spec.namespaces` holds `namespace`. */
  subnetsOfNamespace(namespace: string): SubnetFacts[];
  nad(namespace: string, name: string): NadFacts | undefined;
  nadsWithProvider(provider: string): NadFacts[];
  /** Every NetworkAttachmentDefinition. */
  nads(): NadFacts[];
  /** Pods whose attachment to the NAD asks for `mac`. */
  podsWithAttachmentMac(namespace: string, name: string, mac: string): PodFacts[];
  /** Pods whose `k8s.v1.cni.cncf.io/networks` names the NAD. */
  podsUsingNad(namespace: string, name: string): PodFacts[];
  /** kube-system/ovn-external-gw-config, when it exists. */
  gatewayConfig(): ConfigMapFacts | undefined;
  /** ovn-kubernetes model: the Service, and every Service. */
  service(namespace: string, name: string): ServiceFacts | undefined;
  services(): ServiceFacts[];
  /** The endpoints of a Service ("namespace/name"): its EndpointSlices, or its Endpoints where slices are not served. */
  endpointsOf(service: string): EndpointSliceFacts[];
  /** Objects held, by kind (for metrics). */
  sizes(): Record<string, number>;
  /** Calls `listener` after every stored change; returns the way to stop. */
  onChange(listener: (change: StoredChange) => void): () => void;
}

/**
 * A change to what the API server stored, as the view learned it: one object
 * (`previous` is what the view held before), or a whole kind relisted.
 * Handlers program the network from these, never from admission requests.
 */
export type StoredChange =
  | {
      [K in Kind]: {
        kind: K;
        event: "ADDED" | "MODIFIED" | "DELETED";
        facts: FactsByKind[K];
        previous: FactsByKind[K] | undefined;
      };
    }[Kind]
  | { kind: Kind; event: "RELISTED" };
