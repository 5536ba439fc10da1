/**
 * Services as OVN load balancers (seed 002's watcher: "creates logical ports
 * and load balancers"): one Load_Balancer per Service and protocol, named as
 * ovn-kubernetes names it (`Service_<namespace>/<name>_<PROTOCOL>`), whose
 * VIPs are the Service's cluster IPs and ports and whose backends are the
 * ready endpoints' addresses and target ports. Pure: from stored facts only.
 */
import { addressOf, isIpAddress } from "./addresses.js";
import { GATEWAY_ANNOTATION, readNodeGateway } from "./topology.js";
import type { EndpointSliceFacts, ServiceFacts } from "./facts.js";
import type { ClusterView } from "./view.js";

export interface LoadBalancerPlan {
  name: string;
  /** The Service, "namespace/name". */
  service: string;
  protocol: "tcp" | "udp" | "sctp";
  /** "vip:port" -> "ip:port,ip:port" (IPv6 in brackets), as OVN's Load_Balancer.vips holds it. */
  vips: Record<string, string>;
  options: Record<string, string>;
}

const PROTOCOLS = { TCP: "tcp", UDP: "udp", SCTP: "sctp" } as const;

export const loadBalancerNameOf = (service: string, protocol: string): string =>
  `Service_${service}_${protocol.toUpperCase()}`;

/** True for a Service that gets a load balancer: one with a cluster IP (not headless, not ExternalName). */
export function balancedService(service: ServiceFacts): boolean {
  return (
    service.type !== "ExternalName" &&
    service.clusterIPs.some((ip) => ip !== "None" && isIpAddress(ip)) &&
    service.ports.length > 0
  );
}

const hostPort = (ip: string, port: number): string =>
  ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
const family = (ip: string): 4 | 6 => (ip.includes(":") ? 6 : 4);

/**
 * The load balancers a Service asks for, given the endpoint groups of its
 * slices. A Service port's backends are the ready endpoints of each group
 * whose port has the Service port's name (and protocol), at that port; an
 * address of the other family than the VIP is not a backend of it.
 */
export function loadBalancersOf(
  service: ServiceFacts,
  slices: readonly EndpointSliceFacts[],
  /** The gateway nodes' physical IPs: a NodePort is a VIP on each (the gateway routers hold the group). */
  nodePortAddresses: readonly string[] = [],
): LoadBalancerPlan[] {
  if (!balancedService(service)) return [];
  const clusterIps = service.clusterIPs.filter((ip) => ip !== "None" && isIpAddress(ip));
  const plans = new Map<string, LoadBalancerPlan>();
  for (const port of service.ports) {
    const protocol = PROTOCOLS[port.protocol as keyof typeof PROTOCOLS];
    if (!protocol || !port.port) continue;
    let plan = plans.get(protocol);
    if (!plan) {
      plan = {
        name: loadBalancerNameOf(service.key, protocol),
        service: service.key,
        protocol,
        vips: {},
        options:
          service.sessionAffinity === "ClientIP"
            ? { affinity_timeout: String(service.affinityTimeoutSeconds) }
            : {},
      };
      plans.set(protocol, plan);
    }
    const backends = { 4: new Set<string>(), 6: new Set<string>() };
    for (const group of slices.flatMap((s) => s.groups)) {
      const target = group.ports.find((p) => p.name === port.name && p.protocol === port.protocol);
      if (!target?.port) continue;
      for (const endpoint of group.endpoints)
        if (endpoint.ready)
          for (const address of endpoint.addresses)
            if (isIpAddress(address)) backends[family(address)].add(hostPort(address, target.port));
    }
    const vips: Array<[string, number]> = clusterIps.map((ip) => [ip, port.port]);
    if (port.nodePort && service.type !== "ClusterIP")
      vips.push(...nodePortAddresses.map((ip): [string, number] => [ip, port.nodePort as number]));
    for (const [ip, vipPort] of vips)
      plan.vips[hostPort(ip, vipPort)] = [...backends[family(ip)]].sort().join(",");
  }
  return [...plans.values()];
}

/** The Service a load balancer serves, and the version it was planned from (empty once the Service is gone). */
export interface StoredService {
  service: string;
  uid: string;
  resourceVersion: string;
}

/** What a Service ("namespace/name") asks of its load balancers, from the view: none once it is gone. */
export function serviceLoadBalancers(
  view: ClusterView,
  service: string,
  /** The gateway nodes' physical IPs: given once for a pass over every Service. */
  gatewayAddresses: readonly string[] = gatewayAddressesOf(view),
): { stored: StoredService; plans: LoadBalancerPlan[] } {
  const [namespace = "", name = ""] = service.split("/");
  const facts = view.service(namespace, name);
  return {
    stored: { service, uid: facts?.uid ?? "", resourceVersion: facts?.resourceVersion ?? "" },
    plans: facts ? loadBalancersOf(facts, view.endpointsOf(service), gatewayAddresses) : [],
  };
}

/** The physical IPs of the nodes that declare a gateway (seed 002's gateway-init), sorted. */
export function gatewayAddressesOf(view: ClusterView): string[] {
  return view
    .nodes()
    .map((node) => node.annotations[GATEWAY_ANNOTATION])
    .map((declared) => (declared ? readNodeGateway(declared).gateway?.physicalIp : undefined))
    .filter((ip): ip is string => Boolean(ip))
    .map(addressOf)
    .sort();
}
