/**
 * Seed 002's gateway-init, from the Node's own declaration
 * (`ovn-admission.io/gateway`), as ovn-kubernetes lays a gateway out:
 *
 *   ovn_cluster_router ─ 0.0.0.0/0 via the GR's join address (one route per gateway node: ECMP)
 *   join ─ jtor-GR_<node> ── rtoj-GR_<node> ─ GR_<node> (bound to the node's chassis)
 *            SNAT of the cluster subnet to the physical IP, 0.0.0.0/0 via the default gateway,
 *            the cluster subnet back via the cluster router's join address
 *   GR_<node> ─ rtoe-GR_<node> ── etor-GR_<node> ─ ext_<node> ─ br<interface>_<node> (localnet, physnet)
 *
 * A gateway's rows are replaced whole when its declaration (or its chassis)
 * changes, in one transaction, and removed exactly when the annotation or the
 * Node goes. Every row is marked ours and names its node.
 */
import type { Logger } from "pino";
import { namedUuid, op, type Operation, type OvsdbClient, type Row } from "ovsdb-client";
import { addressOf, macOfAddress, prefixOf } from "../domain/addresses.js";
import { ANNOTATION } from "../domain/annotations.js";
import type { NodeFacts } from "../domain/facts.js";
import {
  clusterRouterJoinIpOf,
  GATEWAY_ANNOTATION,
  gatewayJoinIpOf,
  JOIN_SWITCH,
  PHYSICAL_NETWORK,
  readNodeGateway,
  topologyNames,
} from "../domain/topology.js";
import { byName, CLUSTER_LB_GROUP, NB, OWNER, OWNER_KEY, TOPOLOGY_IDS } from "./rows.js";

export interface GatewayRouterSettings {
  clusterRouter: string;
  clusterIpSubnet: string;
  joinSubnet: string;
}

/** What a gateway node's rows hold: pure, from its stored Node. */
export interface GatewayRouterPlan {
  node: string;
  router: string;
  joinIp: string;
  joinCidr: string;
  physicalInterface: string;
  physicalIp: string;
  physicalCidr: string;
  defaultGateway: string;
  clusterIpSubnet: string;
  clusterRouterJoinIp: string;
}

export function gatewayRouterOf(
  node: NodeFacts,
  settings: GatewayRouterSettings,
): GatewayRouterPlan | undefined {
  const subnet = node.annotations[ANNOTATION.hostSubnet];
  const declared = node.annotations[GATEWAY_ANNOTATION];
  if (!subnet || !declared) return undefined;
  const { gateway } = readNodeGateway(declared);
  const joinIp = gatewayJoinIpOf(subnet, settings.clusterIpSubnet, settings.joinSubnet);
  if (!gateway || !joinIp) return undefined;
  return {
    node: node.name,
    router: topologyNames.gatewayRouter(node.name),
    joinIp,
    joinCidr: `${joinIp}/${prefixOf(settings.joinSubnet)}`,
    physicalInterface: gateway.physicalInterface,
    physicalIp: addressOf(gateway.physicalIp),
    physicalCidr: gateway.physicalIp,
    defaultGateway: gateway.defaultGateway,
    clusterIpSubnet: settings.clusterIpSubnet,
    clusterRouterJoinIp: clusterRouterJoinIpOf(settings.joinSubnet),
  };
}

const ROLE_KEY = TOPOLOGY_IDS.role;
const owned = (node: string, role = "gateway") => ({
  [OWNER_KEY]: OWNER.topology,
  [TOPOLOGY_IDS.node]: node,
  [ROLE_KEY]: role,
});
/** The cluster router's route to a gateway: the one row of a gateway that is not under its router or switches. */
const EGRESS_ROLE = "gateway-egress";
/** On the gateway router: what it was made from, so an unchanged declaration writes nothing. */
const SPEC_KEY = "ovn-admission.io/gateway-spec";
/** The addresses of the pods whose own EIP or SNAT takes precedence over the gateway routers. */
export const NAT_EGRESS_SET = "ovn_admission_nat_pods";
const byUuid = (uuid: unknown): [string, "==", string] => ["_uuid", "==", String(uuid)];

export class GatewayRouterError extends Error {
  override name = "GatewayRouterError";
}

export class GatewayRouters {
  constructor(
    private readonly northbound: OvsdbClient,
    private readonly settings: GatewayRouterSettings,
    /** A node's chassis name (its Open_vSwitch `system-id`), reached through the stored Node only. */
    private readonly chassisOf: (node: string) => Promise<string>,
    private readonly log: Logger,
  ) {}

  private get clusterRouter(): string {
    return this.settings.clusterRouter;
  }

  /** A stored Node's gateway: programmed while it declares one, removed when it does not. */
  async follow(node: NodeFacts): Promise<"written" | "unchanged" | "removed"> {
    const plan = gatewayRouterOf(node, this.settings);
    if (!plan) return this.remove(node.name);
    return this.program(plan, await this.chassisOf(node.name));
  }

  /** Gateways of nodes the view no longer holds (deleted while no replica led) go. */
  async releaseGone(storedNodes: ReadonlySet<string>): Promise<string[]> {
    const gone = (await this.nodesWithGateways()).filter((node) => !storedNodes.has(node));
    for (const node of gone) await this.remove(node);
    return gone;
  }

  /** The rows of `node`'s gateway now: its router (with its ports, routes and NAT), external switch, join port and cluster route. */
  private async current(node: string) {
    const router = topologyNames.gatewayRouter(node);
    const [routers, switches, joinPorts, routes] = await this.northbound.transact(NB, [
      op.select(
        "Logical_Router",
        [byName(router)],
        ["_uuid", "ports", "static_routes", "nat", "external_ids", "options"],
      ),
      op.select(
        "Logical_Switch",
        [byName(topologyNames.externalSwitch(node))],
        ["_uuid", "ports", "external_ids"],
      ),
      op.select(
        "Logical_Switch_Port",
        [byName(topologyNames.joinToRouter(router))],
        ["_uuid", "external_ids"],
      ),
      op.select(
        "Logical_Router_Static_Route",
        [["external_ids", "includes", owned(node, EGRESS_ROLE)]],
        ["_uuid"],
      ),
    ]);
    const ours = (row: Row | undefined) =>
      row && (row.external_ids as Record<string, string>)[OWNER_KEY] === OWNER.topology ? row : undefined;
    const foreign = [routers?.rows?.[0], switches?.rows?.[0], joinPorts?.rows?.[0]].find(
      (r) => r && !ours(r),
    );
    if (foreign)
      throw new GatewayRouterError(
        `node ${node}: OVN Northbound has a row named ${String(foreign.name ?? router)} that ovn-admission did not make; its gateway is left alone`,
      );
    return {
      router: ours(routers?.rows?.[0]),
      externalSwitch: ours(switches?.rows?.[0]),
      joinPort: ours(joinPorts?.rows?.[0]),
      routes: (routes?.rows ?? []) as Row[],
    };
  }

  /** Deletes every row of the gateway as `current` found it. */
  private removeOps(now: Awaited<ReturnType<GatewayRouters["current"]>>): Operation[] {
    const ops: Operation[] = [];
    const uuids = (v: unknown) => ((v as string[] | undefined) ?? []).map(String);
    if (now.router) {
      for (const table of ["Logical_Router_Port", "Logical_Router_Static_Route", "NAT"] as const) {
        const column = {
          Logical_Router_Port: "ports",
          Logical_Router_Static_Route: "static_routes",
          NAT: "nat",
        }[table];
        ops.push(...uuids(now.router[column]).map((u) => op.delete(table, [byUuid(u)])));
      }
      ops.push(op.delete("Logical_Router", [byUuid(now.router._uuid)]));
    }
    if (now.externalSwitch) {
      ops.push(op.delete("Logical_Switch", [byUuid(now.externalSwitch._uuid)]));
      ops.push(...uuids(now.externalSwitch.ports).map((u) => op.delete("Logical_Switch_Port", [byUuid(u)])));
    }
    if (now.joinPort)
      ops.push(
        op.mutate(
          "Logical_Switch",
          [byName(JOIN_SWITCH)],
          [["ports", "delete", [String(now.joinPort._uuid)]]],
        ),
        op.delete("Logical_Switch_Port", [byUuid(now.joinPort._uuid)]),
      );
    const routes = now.routes.map((r) => String(r._uuid));
    if (routes.length)
      ops.push(
        op.mutate("Logical_Router", [byName(this.clusterRouter)], [["static_routes", "delete", routes]]),
        ...routes.map((u) => op.delete("Logical_Router_Static_Route", [byUuid(u)])),
      );
    return ops;
  }

  /** The gateway of `plan` bound to `chassis`: written whole when it differs from what is there. */
  async program(plan: GatewayRouterPlan, chassis: string): Promise<"written" | "unchanged"> {
    const now = await this.current(plan.node);
    const spec = JSON.stringify({ ...plan, chassis });
    if (now.router && (now.router.external_ids as Record<string, string>)[SPEC_KEY] === spec)
      return "unchanged";
    const [groups] = await this.northbound.transact(NB, [
      op.select("Load_Balancer_Group", [byName(CLUSTER_LB_GROUP)], ["_uuid"]),
    ]);
    const group = groups?.rows?.[0]?._uuid;
    const ids = owned(plan.node);
    const toJoin = topologyNames.routerToJoin(plan.router);
    const toExternal = topologyNames.routerToExternal(plan.router);
    const externalSwitch = topologyNames.externalSwitch(plan.node);
    const ops: Operation[] = [
      ...this.removeOps(now),
      op.insert(
        "Logical_Router_Port",
        { name: toJoin, mac: macOfAddress(plan.joinIp), networks: [plan.joinCidr], external_ids: ids },
        { uuidName: "gj" },
      ),
      op.insert(
        "Logical_Router_Port",
        {
          name: toExternal,
          mac: macOfAddress(plan.physicalIp),
          networks: [plan.physicalCidr],
          external_ids: ids,
        },
        { uuidName: "ge" },
      ),
      op.insert(
        "Logical_Router_Static_Route",
        { ip_prefix: "0.0.0.0/0", nexthop: plan.defaultGateway, output_port: toExternal, external_ids: ids },
        { uuidName: "out" },
      ),
      op.insert(
        "Logical_Router_Static_Route",
        { ip_prefix: plan.clusterIpSubnet, nexthop: plan.clusterRouterJoinIp, external_ids: ids },
        { uuidName: "back" },
      ),
      op.insert(
        "NAT",
        { type: "snat", logical_ip: plan.clusterIpSubnet, external_ip: plan.physicalIp, external_ids: ids },
        { uuidName: "snat" },
      ),
      op.insert("Logical_Router", {
        name: plan.router,
        ports: [namedUuid("gj"), namedUuid("ge")],
        static_routes: [namedUuid("out"), namedUuid("back")],
        nat: [namedUuid("snat")],
        options: { chassis },
        ...(group ? { load_balancer_group: [String(group)] } : {}),
        external_ids: { ...ids, [SPEC_KEY]: spec },
      }),
      op.insert(
        "Logical_Switch_Port",
        {
          name: topologyNames.joinToRouter(plan.router),
          type: "router",
          addresses: ["router"],
          options: { "router-port": toJoin },
          external_ids: ids,
        },
        { uuidName: "jp" },
      ),
      op.mutate("Logical_Switch", [byName(JOIN_SWITCH)], [["ports", "insert", [namedUuid("jp")]]]),
      op.insert(
        "Logical_Switch_Port",
        {
          name: topologyNames.externalToRouter(plan.router),
          type: "router",
          addresses: ["router"],
          options: { "router-port": toExternal },
          external_ids: ids,
        },
        { uuidName: "ep" },
      ),
      op.insert(
        "Logical_Switch_Port",
        {
          name: topologyNames.localnetPort(plan.physicalInterface, plan.node),
          type: "localnet",
          addresses: ["unknown"],
          options: { network_name: PHYSICAL_NETWORK },
          external_ids: ids,
        },
        { uuidName: "ln" },
      ),
      op.insert("Logical_Switch", {
        name: externalSwitch,
        ports: [namedUuid("ep"), namedUuid("ln")],
        external_ids: ids,
      }),
      // Pods leave through the gateway routers: one default route per gateway node (ECMP among them).
      op.insert(
        "Logical_Router_Static_Route",
        { ip_prefix: "0.0.0.0/0", nexthop: plan.joinIp, external_ids: owned(plan.node, EGRESS_ROLE) },
        { uuidName: "egress" },
      ),
      op.mutate(
        "Logical_Router",
        [byName(this.clusterRouter)],
        [["static_routes", "insert", [namedUuid("egress")]]],
      ),
    ];
    await this.northbound.transact(NB, ops);
    this.log.info(
      {
        event: "gateway-router-programmed",
        node: plan.node,
        router: plan.router,
        chassis,
        physicalIp: plan.physicalCidr,
        defaultGateway: plan.defaultGateway,
      },
      "gateway router programmed (gateway-init)",
    );
    return "written";
  }

  /** The node no longer declares a gateway (or is gone): exactly its gateway's rows go. */
  async remove(node: string): Promise<"removed" | "unchanged"> {
    const ops = this.removeOps(await this.current(node));
    if (ops.length === 0) return "unchanged";
    await this.northbound.transact(NB, ops);
    this.log.info({ event: "gateway-router-removed", node }, "gateway router removed");
    return "removed";
  }

  /**
   * Pods with their own EIP or SNAT leave through the external gateway, not a
   * gateway router: one address set of their addresses and one reroute
   * policy on the cluster router (at ovn-kubernetes' EgressIP priority, 100),
   * written when they differ from `egress` and removed when it names none.
   */
  async programNatEgress(egress: { sources: string[]; nexthop?: string }): Promise<"written" | "unchanged"> {
    const ids = { [OWNER_KEY]: OWNER.topology, [ROLE_KEY]: "nat-egress" };
    const [sets, policies] = await this.northbound.transact(NB, [
      op.select("Address_Set", [byName(NAT_EGRESS_SET)], ["_uuid", "addresses", "external_ids"]),
      op.select("Logical_Router_Policy", [["external_ids", "includes", ids]], ["_uuid", "match", "nexthops"]),
    ]);
    const set = sets?.rows?.[0];
    if (set && (set.external_ids as Record<string, string>)[OWNER_KEY] !== OWNER.topology)
      throw new GatewayRouterError(
        `OVN Northbound has an address set ${NAT_EGRESS_SET} that ovn-admission did not make`,
      );
    const wanted = egress.nexthop && egress.sources.length ? egress.nexthop : undefined;
    const match = `ip4.src == $${NAT_EGRESS_SET} && ip4.dst != ${this.settings.clusterIpSubnet}`;
    const current = (policies?.rows ?? []) as Row[];
    const ops: Operation[] = [];
    const stale = current.filter(
      (p) => !wanted || p.match !== match || JSON.stringify(p.nexthops) !== JSON.stringify([wanted]),
    );
    if (stale.length)
      ops.push(
        op.mutate(
          "Logical_Router",
          [byName(this.clusterRouter)],
          [["policies", "delete", stale.map((p) => String(p._uuid))]],
        ),
      );
    if (!wanted) {
      if (set) ops.push(op.delete("Address_Set", [byUuid(set._uuid)]));
    } else {
      if (!set)
        ops.push(
          op.insert("Address_Set", { name: NAT_EGRESS_SET, addresses: egress.sources, external_ids: ids }),
        );
      else if (
        JSON.stringify([...((set.addresses as string[]) ?? [])].sort()) !== JSON.stringify(egress.sources)
      )
        ops.push(op.update("Address_Set", [byUuid(set._uuid)], { addresses: egress.sources }));
      if (stale.length === current.length)
        ops.push(
          op.insert(
            "Logical_Router_Policy",
            { priority: 100, match, action: "reroute", nexthops: [wanted], external_ids: ids },
            { uuidName: "egress" },
          ),
          op.mutate(
            "Logical_Router",
            [byName(this.clusterRouter)],
            [["policies", "insert", [namedUuid("egress")]]],
          ),
        );
    }
    if (ops.length === 0) return "unchanged";
    await this.northbound.transact(NB, ops);
    this.log.info(
      { event: "nat-egress-programmed", pods: egress.sources.length, nexthop: wanted },
      "pods with their own EIP or SNAT leave through the external gateway",
    );
    return "written";
  }

  /** Nodes whose gateway rows are there: for releasing those no stored Node declares. */
  async nodesWithGateways(): Promise<string[]> {
    const [routers] = await this.northbound.transact(NB, [
      op.select(
        "Logical_Router",
        [["external_ids", "includes", { [OWNER_KEY]: OWNER.topology, [ROLE_KEY]: "gateway" }]],
        ["external_ids"],
      ),
    ]);
    return (routers?.rows ?? [])
      .map((r) => (r.external_ids as Record<string, string>)[TOPOLOGY_IDS.node] ?? "")
      .filter(Boolean);
  }
}
