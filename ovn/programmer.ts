/**
 * Programs the network from what the API server stored (ADR 0004): every
 * change the view learns from its watches (a Node, a Pod, the gateway
 * ConfigMap) is turned into the writes it asks for, on the replica that holds
 * the Lease. Admission never writes anything but claims; a forged review,
 * or one that a later webhook denies, is never stored and so changes nothing.
 *
 * Work for one object is done in the order its changes came; different
 * objects go in parallel. A write that fails is logged and left to the
 * reconciler's next pass, which programs everything from the view again.
 */
import type { Logger } from "pino";
import { portNameOf } from "../domain/logical-ports.js";
import { parseNodeNetworks, ENCAP_IP_ANNOTATION } from "../domain/planes.js";
import type { ClusterView, StoredChange } from "../domain/view.js";
import type { NodeFacts, PodFacts, SubnetFacts } from "../domain/facts.js";
import { ANNOTATION } from "../domain/annotations.js";

import { holdsAddresses, natEgressOf, natWantOf, natWantOfStored } from "../domain/nat.js";
import type { EncapHandler } from "./encap.js";
import type { GatewayHandler } from "./gateway.js";
import type { NatHandler } from "./nat.js";
import type { PortHandler } from "./ports.js";
import type { NodeSubnets } from "./node-subnets.js";
import type { NetworkModel } from "../domain/settings.js";
import { SubnetSwitches, switchPlanOf, type SubnetSwitchSettings } from "./switches.js";
import { isIntent, portClaimOf, storedPortOf, type PortClaim } from "../domain/port-claims.js";
import { serviceLoadBalancers } from "../domain/services.js";
import type { LoadBalancers } from "./load-balancers.js";
import { nodeTopologyOf, type Topology } from "./topology.js";
import { GATEWAY_ANNOTATION, MANAGEMENT_MAC_ANNOTATION } from "../domain/topology.js";
import type { GatewayRouters } from "./gateway-routers.js";

export interface ProgrammerParts {
  encap: EncapHandler;
  gateway: GatewayHandler;
  nat: NatHandler;
  ports?: PortHandler;
  switches?: SubnetSwitches;
  switchSettings?: SubnetSwitchSettings;
  /** Writes annotations to a stored pod (the Lease holder's API writes); with it, bound pods that no admission addressed are addressed. */
  annotate?: (
    pod: string,
    annotations: Record<string, string>,
    stillWanted: (now: Readonly<Record<string, string>>) => boolean,
  ) => void;
  /** `--default-subnet`: a pod's subnet when nothing else names one. */
  defaultSubnet?: string;
  networkModel?: NetworkModel;
  /** ovn-kubernetes: node switches. */
  nodeSubnets?: NodeSubnets;
  /** ovn-kubernetes: each node's management port (minion-init). */
  topology?: Topology;
  /** ovn-kubernetes: Services as load balancers (the watcher). */
  loadBalancers?: LoadBalancers;
  /** ovn-kubernetes: gateway routers of the nodes that declare a gateway (gateway-init). */
  gatewayRouters?: GatewayRouters;
  /**
   * Beside another control plane (`--alongside kube-ovn`): a stored pod's
   * addresses are held by our claims and released with it; nothing else
   * (switches, ports, NAT rows, the gateway, encap IPs) is ours to write.
   */
  claimsOnly?: boolean;
}

/** A write from a stored object that failed (the reconciler retries it). */
export interface ProgrammingFailure {
  object: { kind: string; namespace: string; name: string; uid: string } | undefined;
  /** What was written: "port", "nat", "load-balancer", "gateway-router", "encap", ... */
  what: string;
  error: string;
}

/** What a node's switch, management port and gateway router are made of. */
const topologyFactsOf = (node: NodeFacts) => [
  node.annotations[ANNOTATION.hostSubnet],
  node.annotations[MANAGEMENT_MAC_ANNOTATION],
  node.annotations[GATEWAY_ANNOTATION],
  node.internalIP,
];

const planesOf = (node: NodeFacts) => parseNodeNetworks(node.annotations[ANNOTATION.nodeNetworks]);
const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export class Programmer {
  private readonly queues = new Map<string, Promise<void>>();
  /** Keys with a pass waiting that reads the view when it runs (enqueueLatest). */
  private readonly waiting = new Set<string>();
  private stopListening: (() => void) | undefined;

  constructor(
    private readonly view: ClusterView,
    private readonly parts: ProgrammerParts,
    /** Whether this replica programs now (the Lease holder). */
    private readonly leading: () => boolean,
    private readonly log: Logger,
    /** Told the result of every write (for metrics). */
    private readonly onResult: (what: string, ok: boolean) => void = () => undefined,
    /** Told every failed write with the stored object it was for (for Kubernetes Events). */
    private readonly onFailure: (failure: ProgrammingFailure) => void = () => undefined,
  ) {}

  /** The stored object a queue key programs, as the view holds it (undefined once it is gone). */
  private objectOf(key: string): ProgrammingFailure["object"] {
    const [prefix = "", ...rest] = key.split("/");
    const [first = "", second = ""] = rest;
    const ref = (kind: string, facts: { namespace: string; name: string; uid: string } | undefined) =>
      facts ? { kind, namespace: facts.namespace, name: facts.name, uid: facts.uid } : undefined;
    switch (prefix) {
      case "pod":
        return ref("Pod", this.view.pod(first, second));
      case "node":
      case "node-switch":
        return ref("Node", this.view.node(first));
      case "service":
        return ref("Service", this.view.service(first, second));
      case "subnet":
        return ref("Subnet", this.view.subnet(first));
      case "gateway":
        return ref("ConfigMap", this.view.gatewayConfig());
      default:
        return undefined;
    }
  }

  private get model(): NetworkModel {
    return this.parts.networkModel ?? "kube-ovn";
  }

  start(): void {
    this.stopListening ??= this.view.onChange((change) => this.onStored(change));
  }

  stop(): void {
    this.stopListening?.();
    this.stopListening = undefined;
  }

  /** Resolves once the work queued so far is done (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.queues.size > 0) await Promise.allSettled([...this.queues.values()]);
  }

  private onStored(change: StoredChange): void {
    // A replica that does not lead programs nothing; the leader's first pass covers what it missed.
    if (!this.leading() || change.event === "RELISTED") return;
    if (this.parts.claimsOnly) {
      if (change.kind === "Pod") this.onPodClaims(change.event, change.facts, change.previous);
      return;
    }
    switch (change.kind) {
      case "Node":
        return this.onNode(change.event, change.facts, change.previous);
      case "Pod":
        return this.onPod(change.event, change.facts, change.previous);
      case "ConfigMap":
        this.enqueue("gateway", "gateway", () => this.parts.gateway.reconcile());
        this.natEgress();
        return;
      case "Subnet":
        return this.onSubnet(change.event, change.facts);
      case "Service":
        return this.onService(change.facts.key);
      case "EndpointSlice":
      case "Endpoints":
        if (change.facts.service) this.onService(change.facts.service);
        if (change.previous?.service && change.previous.service !== change.facts.service)
          this.onService(change.previous.service);
        return;
      default:
        return;
    }
  }

  private onNode(
    event: "ADDED" | "MODIFIED" | "DELETED",
    node: NodeFacts,
    previous: NodeFacts | undefined,
  ): void {
    this.onNodeSwitch(event, node, previous);
    this.onNodePorts(event, node, previous);
    if (event === "DELETED") {
      this.enqueue(`node/${node.name}`, "encap", async () => this.parts.encap.forgetNode(node.name));
      return;
    }
    const planes = planesOf(node);
    const before = previous ? planesOf(previous) : {};
    const changed = !previous || previous.internalIP !== node.internalIP || !sameJson(before, planes);
    if (!changed || (Object.keys(planes).length === 0 && Object.keys(before).length === 0)) return;
    this.enqueue(`node/${node.name}`, "encap", () =>
      this.parts.encap.programNode({ node: node.name, internalIP: node.internalIP, planes }),
    );
  }

  /**
   * ovn-kubernetes: a stored node's switch gets its router port and its
   * management port; a deleted node's management port goes, then its switch once empty.
   */
  private onNodeSwitch(
    event: "ADDED" | "MODIFIED" | "DELETED",
    node: NodeFacts,
    previous: NodeFacts | undefined,
  ): void {
    const { switches, networkModel, topology, gatewayRouters } = this.parts;
    const subnet = node.annotations[ANNOTATION.hostSubnet];
    if (!switches || networkModel !== "ovn-kubernetes" || !subnet) return;
    // A Node changes for many reasons (labels, status); its rows follow only what they are made of.
    if (event === "MODIFIED" && previous && sameJson(topologyFactsOf(previous), topologyFactsOf(node)))
      return;
    const key = `node-switch/${node.name}`;
    if (event === "DELETED") {
      if (gatewayRouters) this.enqueue(key, "gateway-router", () => gatewayRouters.remove(node.name));
      if (topology) this.enqueue(key, "node-topology", () => topology.removeNode(node.name));
      this.enqueue(key, "node-switch", () =>
        switches.remove(node.name, switches.planOfNode(node.name, subnet)),
      );
      return;
    }
    this.enqueue(key, "node-switch", () =>
      switches.program(SubnetSwitches.nodeSubnet(node, subnet), node.name),
    );
    const plan = nodeTopologyOf(node);
    if (topology && plan) this.enqueue(key, "node-topology", () => topology.programNode(plan));
    if (gatewayRouters) this.enqueue(key, "gateway-router", () => gatewayRouters.follow(node));
  }

  /** A gateway node's physical IP is a VIP of every NodePort: those Services follow its declaration. */
  private onNodePorts(
    event: "ADDED" | "MODIFIED" | "DELETED",
    node: NodeFacts,
    previous: NodeFacts | undefined,
  ): void {
    const before = previous?.annotations[GATEWAY_ANNOTATION];
    const now = event === "DELETED" ? undefined : node.annotations[GATEWAY_ANNOTATION];
    if (!this.parts.loadBalancers || before === now) return;
    for (const service of this.view.services())
      if (service.ports.some((p) => p.nodePort)) this.onService(service.key);
  }

  /** ovn-kubernetes: a Service's load balancers follow it and its endpoints, as the view holds them when the work runs. */
  private onService(service: string): void {
    const loadBalancers = this.parts.loadBalancers;
    if (!loadBalancers) return;
    this.enqueueLatest(`service/${service}`, "load-balancer", () => {
      const { stored, plans } = serviceLoadBalancers(this.view, service);
      return loadBalancers.program(stored, plans);
    });
  }

  private onSubnet(event: "ADDED" | "MODIFIED" | "DELETED", subnet: SubnetFacts): void {
    const { switches, switchSettings } = this.parts;
    if (!switches || !switchSettings) return;
    const key = `subnet/${subnet.name}`;
    if (event === "DELETED") {
      this.enqueue(key, "subnet-switch", () =>
        switches.remove(subnet.name, switchPlanOf(subnet, switchSettings)),
      );
      return;
    }
    this.enqueue(key, "subnet-switch", () => switches.program(subnet));
  }

  /** The pod's logical switch port follows its stored address annotations; it goes with the pod. */
  private onPodPort(
    event: "ADDED" | "MODIFIED" | "DELETED",
    pod: PodFacts,
    previous: PodFacts | undefined,
  ): void {
    const ports = this.parts.ports;
    if (!ports) return;
    const key = `pod/${pod.key}`;
    const model = this.parts.networkModel ?? "kube-ovn";
    const wanted = event !== "DELETED" && holdsAddresses(pod) ? storedPortOf(pod, model) : undefined;
    const before = previous && holdsAddresses(previous) ? storedPortOf(previous, model) : undefined;
    if (wanted) {
      if (!before || !sameJson({ ...wanted, resourceVersion: "" }, { ...before, resourceVersion: "" }))
        this.enqueue(key, "port", () => ports.program(wanted));
    } else if (before || (event === "DELETED" && storedPortOf(pod, model))) {
      this.enqueue(key, "port", () => ports.release(pod.key));
    } else if (event !== "DELETED" && pod.nodeName && !previous?.nodeName && holdsAddresses(pod)) {
      this.addressBoundPod(pod);
    }
  }

  /**
   * A pod the API server stored bound but without an address: its binding
   * came before the view had the pod, or the webhook was down (pods/binding
   * fails open). Its address is claimed from the stored object and written to
   * it, as Kube-OVN's controller does; the annotated pod's port follows.
   */
  private addressBoundPod(pod: PodFacts): void {
    const { ports, annotate } = this.parts;
    // Beside another control plane, that plane addresses the pods it binds.
    if (!ports || !annotate || this.parts.claimsOnly || pod.annotations[ANNOTATION.allocated] === "true")
      return;
    const decided = portClaimOf(
      pod.namespace,
      pod.name,
      pod.uid,
      pod.annotations,
      this.view,
      { defaultSubnet: this.parts.defaultSubnet ?? "", networkModel: this.parts.networkModel ?? "kube-ovn" },
      pod.nodeName,
    );
    if (!decided) return;
    if (!isIntent(decided)) {
      this.log.warn(
        { event: "pod-not-addressed", pod: pod.key, reason: decided.message },
        "a bound pod cannot be given the address it asks for",
      );
      return;
    }
    this.enqueue(`pod/${pod.key}`, "port-claim", async () => {
      const { annotations = {} } = await ports.claim(decided.spec as PortClaim);
      annotate(pod.key, annotations, (now) => now[ANNOTATION.allocated] !== "true");
      this.log.info(
        { event: "bound-pod-addressed", pod: pod.key, uid: pod.uid, ip: annotations[ANNOTATION.ipAddress] },
        "a bound pod no admission addressed was given its address",
      );
    });
  }

  /** Beside another control plane: the pod's claims follow it; its port and NAT rows are that plane's. */
  private onPodClaims(
    event: "ADDED" | "MODIFIED" | "DELETED",
    pod: PodFacts,
    previous: PodFacts | undefined,
  ): void {
    this.onPodPort(event, pod, previous);
    if (event === "DELETED") this.releaseNat(pod);
  }

  /** A deleted pod's NAT rows and claims go. */
  private releaseNat(pod: PodFacts): void {
    if (natWantOf(pod.namespace, pod.name, pod.annotations, "centralized", this.model).holds) {
      this.enqueue(`pod/${pod.key}`, "nat", () => this.parts.nat.release(pod.key).then(() => undefined));
      this.natEgress();
    }
  }

  private onPod(
    event: "ADDED" | "MODIFIED" | "DELETED",
    pod: PodFacts,
    previous: PodFacts | undefined,
  ): void {
    this.onPodPort(event, pod, previous);
    const key = `pod/${pod.key}`;
    if (event === "DELETED") {
      if (pod.annotations[ENCAP_IP_ANNOTATION] && pod.nodeName)
        this.parts.encap.forgetInterface(pod.nodeName, portNameOf(pod.namespace, pod.name, this.model));
      this.releaseNat(pod);
      return;
    }
    const encapIp = pod.annotations[ENCAP_IP_ANNOTATION];
    if (
      encapIp &&
      pod.nodeName &&
      (previous?.annotations[ENCAP_IP_ANNOTATION] !== encapIp || previous?.nodeName !== pod.nodeName)
    ) {
      this.enqueue(key, "interface-encap", () =>
        this.parts.encap.programInterface({
          node: pod.nodeName,
          ifaceId: portNameOf(pod.namespace, pod.name, this.model),
          encapIp,
        }),
      );
    }
    const want = natWantOfStored(pod, this.view, this.model);
    const before = previous ? natWantOfStored(previous, this.view, this.model) : { pod: pod.key };
    if (!want.holds && !before.holds) return;
    if (previous && sameJson(want, before) && previous.uid === pod.uid) return;
    const stored = { uid: pod.uid, resourceVersion: pod.resourceVersion };
    this.enqueue(key, "nat", () => this.parts.nat.program(want, stored).then(() => undefined));
    this.natEgress();
  }

  /** ovn-kubernetes with gateway routers: the pods whose own EIP or SNAT goes first, as the view holds them when the work runs. */
  private natEgress(): void {
    const routers = this.parts.gatewayRouters;
    if (routers)
      this.enqueueLatest("nat-egress", "nat-egress", () =>
        routers.programNatEgress(natEgressOf(this.view, this.model)),
      );
  }

  /**
   * Work that reads the view when it runs: one pass waiting for `key` is
   * enough, so a burst of events (a Service's slices, pods gaining EIPs) is
   * one write, not one per event.
   */
  private enqueueLatest(key: string, what: string, work: () => Promise<unknown>): void {
    if (this.waiting.has(key)) return;
    this.waiting.add(key);
    this.enqueue(key, what, () => {
      this.waiting.delete(key);
      return work();
    });
  }

  /** Runs `work` after the work already queued for `key`; a failure is logged, the reconciler retries. */
  private enqueue(key: string, what: string, work: () => Promise<unknown>): void {
    const previous = this.queues.get(key) ?? Promise.resolve();
    const next = previous
      .then(work)
      .then(
        () => this.onResult(what, true),
        (err: Error) => {
          this.onResult(what, false);
          const object = this.objectOf(key);
          if (object) this.onFailure({ object, what, error: err.message });
          this.log.warn(
            { event: "program-failed", object: key, what, error: err.message },
            "could not program from the stored object; the reconciler retries",
          );
        },
      )
      .finally(() => {
        if (this.queues.get(key) === next) this.queues.delete(key);
      });
    this.queues.set(key, next);
  }
}
