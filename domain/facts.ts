/**
 * What the view keeps of each object: only what the rules read. A pod is
 * trimmed to its identity, node, phase and our annotations, so that 100,000
 * pods fit in a small heap.
 */
import type { KubeObject } from "./kube.js";

import type { Kind } from "./kinds.js";

export interface ObjectFacts {
  /** "namespace/name", or "name" for cluster-scoped objects. */
  key: string;
  name: string;
  namespace: string;
  /** Which incarnation of the name: what OVN rows programmed from the object are matched on. */
  uid: string;
  resourceVersion: string;
}

export interface NodeFacts extends ObjectFacts {
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  internalIP: string | undefined;
}

export interface NamespaceFacts extends ObjectFacts {
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
}

export interface PodFacts extends ObjectFacts {
  nodeName: string;
  phase: string;
  terminating: boolean;
  /** Only annotations of our contract (ovn.kubernetes.io, its <provider>. forms, k8s.v1.cni.cncf.io, ovn-admission.io). */
  annotations: Readonly<Record<string, string>>;
}

export interface SubnetFacts extends ObjectFacts {
  cidrBlock: string;
  gateway: string;
  provider: string;
  vpc: string;
  vlan: string;
  nodeNetwork: string;
  namespaces: readonly string[];
  isDefault: boolean;
  /** Addresses no pod gets: "a.b.c.d" or ranges "a..b" (Kube-OVN's spec.excludeIps). */
  excludeIps: readonly string[];
}

export interface VpcFacts extends ObjectFacts {
  namespaces: readonly string[];
}

export interface VpcNatGatewayFacts extends ObjectFacts {
  vpc: string;
  subnet: string;
  lanIp: string;
}

export interface NadFacts extends ObjectFacts {
  annotations: Readonly<Record<string, string>>;
  /** spec.config as written (JSON text); parsed by the rules that need it. */
  config: string;
  /** The kube-ovn `provider` in the config, when it parses and has one. */
  provider: string | undefined;
}

export interface ConfigMapFacts extends ObjectFacts {
  data: Readonly<Record<string, string>>;
}

export interface ServicePortFacts {
  name: string;
  protocol: string;
  port: number;
  /** A number, or the name of a container port (resolved by the EndpointSlice controller). */
  targetPort: number | string;
  nodePort: number | undefined;
}

export interface ServiceFacts extends ObjectFacts {
  type: string;
  /** spec.clusterIPs (or spec.clusterIP): "None" for a headless Service. */
  clusterIPs: readonly string[];
  ports: readonly ServicePortFacts[];
  /** spec.sessionAffinity: "ClientIP" or "None". */
  sessionAffinity: string;
  /** spec.sessionAffinityConfig.clientIP.timeoutSeconds (Kubernetes' default 10800). */
  affinityTimeoutSeconds: number;
}

/** Endpoints that share ports: one EndpointSlice, or one subset of an Endpoints object. */
export interface EndpointGroup {
  ports: ReadonlyArray<{ name: string; port: number; protocol: string }>;
  endpoints: ReadonlyArray<{ addresses: readonly string[]; ready: boolean }>;
}

/** An EndpointSlice (discovery.k8s.io v1 or v1beta1), or a core/v1 Endpoints where no slice is served. */
export interface EndpointSliceFacts extends ObjectFacts {
  /** "namespace/name" of the Service it serves. */
  service: string;
  groups: readonly EndpointGroup[];
}

export interface FactsByKind {
  Node: NodeFacts;
  Namespace: NamespaceFacts;
  Pod: PodFacts;
  Subnet: SubnetFacts;
  Vpc: VpcFacts;
  VpcNatGateway: VpcNatGatewayFacts;
  NetworkAttachmentDefinition: NadFacts;
  ConfigMap: ConfigMapFacts;
  Service: ServiceFacts;
  EndpointSlice: EndpointSliceFacts;
  Endpoints: EndpointSliceFacts;
}

const OUR_ANNOTATION = /(^|\.)ovn\.kubernetes\.io\/|^k8s\.v1\.cni\.cncf\.io\/|^ovn-admission\.io\/|^ovn$/;

function identity(o: KubeObject): ObjectFacts {
  const name = o.metadata?.name ?? "";
  const namespace = o.metadata?.namespace ?? "";
  return {
    key: namespace ? `${namespace}/${name}` : name,
    name,
    namespace,
    uid: o.metadata?.uid ?? "",
    resourceVersion: o.metadata?.resourceVersion ?? "",
  };
}

function spec(o: KubeObject): Record<string, unknown> {
  const s = o.spec;
  return typeof s === "object" && s !== null ? (s as Record<string, unknown>) : {};
}

const str = (v: unknown): string => (typeof v === "string" ? v : "");
const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];

function kubeOvnProvider(config: string): string | undefined {
  try {
    const parsed = JSON.parse(config) as {
      type?: unknown;
      provider?: unknown;
      plugins?: Array<{ type?: unknown; provider?: unknown }>;
    };
    const plugins = Array.isArray(parsed.plugins) ? parsed.plugins : [parsed];
    const ovn = plugins.find((p) => p.type === "kube-ovn");
    return typeof ovn?.provider === "string" ? ovn.provider : undefined;
  } catch {
    return undefined; // a NAD whose config does not parse serves no provider
  }
}

const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);
const records = (v: unknown): Array<Record<string, unknown>> =>
  Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => typeof x === "object" && x !== null) : [];
const portsOf = (v: unknown) =>
  records(v).map((p) => ({ name: str(p.name), port: num(p.port) ?? 0, protocol: str(p.protocol) || "TCP" }));

/** Trims an object of `kind` to what the rules read. */
export const trim: { [K in Kind]: (o: KubeObject) => FactsByKind[K] } = {
  Node(o) {
    const addresses =
      (o.status as { addresses?: Array<{ type?: string; address?: string }> } | undefined)?.addresses ?? [];
    return {
      ...identity(o),
      labels: o.metadata?.labels ?? {},
      annotations: o.metadata?.annotations ?? {},
      internalIP: addresses.find((a) => a.type === "InternalIP")?.address,
    };
  },
  Namespace(o) {
    return { ...identity(o), labels: o.metadata?.labels ?? {}, annotations: o.metadata?.annotations ?? {} };
  },
  Pod(o) {
    const annotations: Record<string, string> = {};
    for (const [k, v] of Object.entries(o.metadata?.annotations ?? {}))
      if (OUR_ANNOTATION.test(k)) annotations[k] = v;
    return {
      ...identity(o),
      nodeName: str(spec(o).nodeName),
      phase: str((o.status as { phase?: unknown } | undefined)?.phase),
      terminating: Boolean(o.metadata?.deletionTimestamp),
      annotations,
    };
  },
  Subnet(o) {
    const s = spec(o);
    return {
      ...identity(o),
      cidrBlock: str(s.cidrBlock),
      gateway: str(s.gateway),
      provider: str(s.provider),
      vpc: str(s.vpc),
      vlan: str(s.vlan),
      nodeNetwork: str(s.nodeNetwork),
      namespaces: strings(s.namespaces),
      isDefault: s.default === true,
      excludeIps: strings(s.excludeIps),
    };
  },
  Vpc(o) {
    return { ...identity(o), namespaces: strings(spec(o).namespaces) };
  },
  VpcNatGateway(o) {
    const s = spec(o);
    return { ...identity(o), vpc: str(s.vpc), subnet: str(s.subnet), lanIp: str(s.lanIp) };
  },
  NetworkAttachmentDefinition(o) {
    const config = str(spec(o).config);
    return {
      ...identity(o),
      annotations: o.metadata?.annotations ?? {},
      config,
      provider: kubeOvnProvider(config),
    };
  },
  ConfigMap(o) {
    const data = o.data;
    return {
      ...identity(o),
      data: typeof data === "object" && data !== null ? (data as Record<string, string>) : {},
    };
  },
  Service(o) {
    const s = spec(o);
    const clusterIPs = strings(s.clusterIPs);
    const affinity = (s.sessionAffinityConfig as { clientIP?: { timeoutSeconds?: unknown } } | undefined)
      ?.clientIP?.timeoutSeconds;
    return {
      ...identity(o),
      type: str(s.type) || "ClusterIP",
      clusterIPs: clusterIPs.length ? clusterIPs : str(s.clusterIP) ? [str(s.clusterIP)] : [],
      ports: records(s.ports).map((p) => ({
        name: str(p.name),
        protocol: str(p.protocol) || "TCP",
        port: num(p.port) ?? 0,
        targetPort: typeof p.targetPort === "string" ? p.targetPort : (num(p.targetPort) ?? num(p.port) ?? 0),
        nodePort: num(p.nodePort),
      })),
      sessionAffinity: str(s.sessionAffinity) || "None",
      affinityTimeoutSeconds: num(affinity) ?? 10_800,
    };
  },
  EndpointSlice(o) {
    const id = identity(o);
    const service = o.metadata?.labels?.["kubernetes.io/service-name"] ?? "";
    const endpoints = records(o.endpoints).map((e) => ({
      addresses: strings(e.addresses),
      // An unknown condition is read as ready, as the API documents.
      ready: (e.conditions as { ready?: unknown } | undefined)?.ready !== false,
    }));
    return {
      ...id,
      service: service ? `${id.namespace}/${service}` : "",
      groups: [{ ports: portsOf(o.ports), endpoints }],
    };
  },
  Endpoints(o) {
    const id = identity(o);
    const addresses = (v: unknown, ready: boolean) =>
      records(v).map((a) => ({ addresses: strings([a.ip]), ready }));
    return {
      ...id,
      service: id.key,
      groups: records(o.subsets).map((subset) => ({
        ports: portsOf(subset.ports),
        endpoints: [...addresses(subset.addresses, true), ...addresses(subset.notReadyAddresses, false)],
      })),
    };
  },
};
