/**
 * Makes OVN agree with the stored objects in the view again: the gateway with
 * its ConfigMap, NAT rows with pods' EIP and SNAT annotations (rows of deleted
 * pods go, rows missing after a crash come back, claims no stored pod asks
 * for go after the grace, pods whose row is in place are marked routed).
 * Runs once the view has synced, then every interval, on the Lease holder.
 * Nothing is freed at DELETE admission: a terminating pod still uses its address.
 */
import type { Logger } from "pino";
import type { ClusterView } from "../domain/view.js";
import { ANNOTATION } from "../domain/annotations.js";
import { holdsAddresses, natEgressOf, type NatWant, natWantOfStored } from "../domain/nat.js";
import { storedPortOf } from "../domain/port-claims.js";
import type { PortHandler } from "./ports.js";
import { SubnetSwitches } from "./switches.js";
import type { NodeSubnets } from "./node-subnets.js";
import type { NetworkModel } from "../domain/settings.js";
import type { GatewayHandler } from "./gateway.js";
import type { NatHandler, NatReconcile, StoredNatWant } from "./nat.js";
import type { LoadBalancers } from "./load-balancers.js";
import { nodeTopologyOf, type Topology } from "./topology.js";
import type { GatewayRouters } from "./gateway-routers.js";
import { gatewayAddressesOf, serviceLoadBalancers } from "../domain/services.js";

/** The NAT every stored pod of the view asks for, with the object that asks. */
export function wantedNat(view: ClusterView, model: NetworkModel): StoredNatWant[] {
  return view
    .podsWithNat()
    .map((p) => ({
      want: natWantOfStored(p, view, model),
      stored: { uid: p.uid, resourceVersion: p.resourceVersion },
    }))
    .filter((w) => w.want.holds);
}

export interface ReconcilerOptions {
  intervalMs: number;
  /** Claims and rows younger than this are kept even when the view has no pod for them (it may lag behind). */
  graceMs: number;
  /** Marks a pod routed; given the NAT it must still ask for. */
  markRouted: (want: NatWant) => void;
  /** Whether this replica reconciles now (the Lease leader); always, when not given. */
  leading?: () => boolean;
  /** Told what each NAT pass changed (for metrics). */
  onNatReconciled?: (result: NatReconcile) => void;
  /** Pods' ports and subnets' switches, when the service programs them. */
  ports?: PortHandler;
  switches?: SubnetSwitches;
  networkModel?: NetworkModel;
  /** ovn-kubernetes: node switches, released when their Node is gone. */
  nodeSubnets?: NodeSubnets;
  /** ovn-kubernetes: nodes' management ports, and Services' load balancers. */
  topology?: Topology;
  loadBalancers?: LoadBalancers;
  gatewayRouters?: GatewayRouters;
  /** Beside another control plane (`--alongside`): claims only; no gateway, switch, port move or NAT row. */
  claimsOnly?: boolean;
}

export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<NatReconcile | undefined> | undefined;

  constructor(
    private readonly view: ClusterView,
    private readonly gateway: GatewayHandler,
    private readonly nat: NatHandler,
    private readonly options: ReconcilerOptions,
    private readonly log: Logger,
  ) {}

  /** Reconciles once `synced` resolves, then every interval. */
  start(synced: Promise<void>): void {
    void synced.then(() => {
      void this.run();
      this.timer = setInterval(() => void this.run(), this.options.intervalMs);
      this.timer.unref();
    });
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One pass; a pass already running is joined, not doubled. */
  run(): Promise<NatReconcile | undefined> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Subnets' switches from the stored Subnets, then pods' ports from the stored pods. */
  private async reconcileNetwork(): Promise<void> {
    const { ports, switches } = this.options;
    if (switches && this.view.knows("Subnet")) {
      for (const subnet of this.view.subnets()) {
        await switches
          .program(subnet)
          .catch((err: Error) =>
            this.log.warn(
              { event: "subnet-switch-failed", subnet: subnet.name, error: err.message },
              "subnet switch not programmed",
            ),
          );
      }
    }
    const { nodeSubnets, networkModel } = this.options;
    if (switches && networkModel === "ovn-kubernetes" && this.view.knows("Node")) {
      const stored = new Set<string>();
      for (const node of this.view.nodes()) {
        const subnet = node.annotations[ANNOTATION.hostSubnet];
        if (!subnet) continue;
        stored.add(node.name);
        const plan = nodeTopologyOf(node);
        await this.step(
          "node-switch-failed",
          "node switch not programmed",
          async () => {
            await switches.program(SubnetSwitches.nodeSubnet(node, subnet), node.name);
            if (plan) await this.options.topology?.programNode(plan);
          },
          { node: node.name },
        );
        const routers = this.options.gatewayRouters;
        if (routers)
          await this.step(
            "gateway-router-failed",
            "gateway router not programmed",
            () => routers.follow(node),
            {
              node: node.name,
            },
          );
      }
      const { gatewayRouters, topology } = this.options;
      // Without the pods, no pod can be told to have lost its EIP.
      if (gatewayRouters && this.view.knows("Pod"))
        await this.step("nat-egress-failed", "EIP/SNAT pods' egress not programmed", () =>
          gatewayRouters.programNatEgress(natEgressOf(this.view, networkModel)),
        );
      if (gatewayRouters)
        await this.step("gateway-routers-release-failed", "deleted nodes' gateway routers not released", () =>
          gatewayRouters.releaseGone(stored),
        );
      if (topology)
        await this.step("node-topology-release-failed", "deleted nodes' management ports not released", () =>
          topology.releaseGone(stored),
        );
      if (nodeSubnets)
        await this.step("node-subnets-release-failed", "node subnets not released", () =>
          nodeSubnets.releaseGone(stored, this.options.graceMs),
        );
    }
    const { loadBalancers } = this.options;
    if (loadBalancers && this.view.knows("Service")) {
      const gateways = gatewayAddressesOf(this.view);
      const wanted = this.view
        .services()
        .map((service) => serviceLoadBalancers(this.view, service.key, gateways));
      await this.step("load-balancers-reconcile-failed", "load balancers not reconciled", () =>
        loadBalancers.reconcile(wanted),
      );
    }
    if (ports && this.view.knows("Pod")) {
      await ports
        .reconcile(this.storedPorts(), this.options.graceMs)
        .catch((err: Error) =>
          this.log.warn({ event: "ports-reconcile-failed", error: err.message }, "ports not reconciled"),
        );
    }
  }

  /** Beside another control plane: stored pods' addresses held by our claims; claims nobody asks for released. */
  private async reconcileClaims(): Promise<NatReconcile | undefined> {
    const { ports } = this.options;
    if (!this.view.knows("Pod")) return undefined;
    if (ports)
      await ports
        .reconcile(this.storedPorts(), this.options.graceMs)
        .catch((err: Error) =>
          this.log.warn({ event: "ports-reconcile-failed", error: err.message }, "claims not reconciled"),
        );
    try {
      const result = await this.nat.reconcile(
        wantedNat(this.view, this.options.networkModel ?? "kube-ovn"),
        this.options.graceMs,
        true,
      );
      this.options.onNatReconciled?.(result);
      return result;
    } catch (err) {
      this.log.warn(
        { event: "nat-reconcile-failed", error: (err as Error).message },
        "NAT claims not reconciled",
      );
      return undefined;
    }
  }

  /** One step of a pass: a failure is logged and the pass goes on (the next pass tries again). */
  private async step(
    event: string,
    message: string,
    work: () => Promise<unknown>,
    fields: Record<string, string> = {},
  ): Promise<void> {
    await work().catch((err: Error) => this.log.warn({ event, ...fields, error: err.message }, message));
  }

  /** The port every stored pod with addresses asks for. */
  private storedPorts() {
    return this.view
      .podsWithAddresses()
      .filter(holdsAddresses)
      .map((pod) => storedPortOf(pod, this.options.networkModel))
      .filter((p): p is NonNullable<typeof p> => p !== undefined);
  }

  private async pass(): Promise<NatReconcile | undefined> {
    if (this.options.leading && !this.options.leading()) return undefined;
    if (this.options.claimsOnly) return this.reconcileClaims();
    try {
      await this.gateway.reconcile();
    } catch (err) {
      this.log.warn(
        { event: "gateway-reconcile-failed", error: (err as Error).message },
        "gateway not reconciled",
      );
    }
    await this.reconcileNetwork();
    // Without the pods (no cluster) no row can be told to have lost its pod.
    if (!this.view.knows("Pod")) return undefined;
    try {
      const result = await this.nat.reconcile(
        wantedNat(this.view, this.options.networkModel ?? "kube-ovn"),
        this.options.graceMs,
      );
      this.options.onNatReconciled?.(result);
      for (const want of result.programmed) {
        const [namespace = "", name = ""] = want.pod.split("/");
        if (this.view.pod(namespace, name)?.annotations[ANNOTATION.routed] !== "true")
          this.options.markRouted(want);
      }
      return result;
    } catch (err) {
      this.log.warn({ event: "nat-reconcile-failed", error: (err as Error).message }, "NAT not reconciled");
      return undefined;
    }
  }
}
