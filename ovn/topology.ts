/**
 * Seed 002's master-init and the node half of minion-init, in the
 * ovn-kubernetes model, as ovn-kubernetes lays them out (domain/topology.ts):
 *
 *   ovn_cluster_router ── rtoj-ovn_cluster_router ── join      (master-init, from the configuration)
 *          │
 *          └─ rtos-<node> ── <node> switch ── k8s-<node>       (the node's management port, from the stored Node)
 *
 * The cluster router, the join switch and the Services' load balancer group
 * are made when absent (two replicas at once make one); a node's management
 * port, the route that sends pods' traffic for the node's own address to
 * it, and the load balancer group on its switch follow the stored Node and go
 * with it. Only rows marked ours are ever changed.
 */
import type { Logger } from "pino";
import { namedUuid, op, TimedOutError, type Operation, type OvsdbClient, type Row } from "ovsdb-client";
import { macOfAddress, prefixOf } from "../domain/addresses.js";
import { ANNOTATION } from "../domain/annotations.js";
import type { NodeFacts } from "../domain/facts.js";
import {
  clusterRouterJoinIpOf,
  JOIN_SWITCH,
  MANAGEMENT_MAC_ANNOTATION,
  managementPortOf,
  topologyNames,
} from "../domain/topology.js";
import { byName, CLUSTER_LB_GROUP, createIfAbsent, NB, OWNER, OWNER_KEY, TOPOLOGY_IDS } from "./rows.js";

export interface TopologySettings {
  clusterRouter: string;
  joinSubnet: string;
}

const OWNED = { [OWNER_KEY]: OWNER.topology };
const MANAGEMENT = { ...OWNED, [TOPOLOGY_IDS.role]: "management" };
const ownedByNode = (node: string): [string, "includes", Record<string, string>] => [
  "external_ids",
  "includes",
  { ...MANAGEMENT, [TOPOLOGY_IDS.node]: node },
];

/** What a node's rows must hold, from its stored Node: pure. */
export function nodeTopologyOf(node: NodeFacts): NodeTopology | undefined {
  const subnet = node.annotations[ANNOTATION.hostSubnet];
  if (!subnet) return undefined;
  const port = managementPortOf(subnet);
  const mac = node.annotations[MANAGEMENT_MAC_ANNOTATION] || port.mac;
  return {
    node: node.name,
    switchName: node.name,
    managementPort: topologyNames.managementPort(node.name),
    addresses: `${mac} ${port.ip}`,
    // Pods reach the node's own address through its management port: a route, not a policy,
    // since a cluster without a gateway has no default route for a policy to come after.
    route:
      node.internalIP && node.internalIP.includes(":") === port.ip.includes(":")
        ? { ip_prefix: `${node.internalIP}/${port.ip.includes(":") ? 128 : 32}`, nexthop: port.ip }
        : undefined,
  };
}

export interface NodeTopology {
  node: string;
  switchName: string;
  managementPort: string;
  /** "MAC IP" of the management port. */
  addresses: string;
  /** The node's own address via its management port, on the cluster router. */
  route: { ip_prefix: string; nexthop: string } | undefined;
}

export class Topology {
  constructor(
    private readonly northbound: OvsdbClient,
    private readonly settings: TopologySettings,
    private readonly log: Logger,
  ) {}

  /** master-init: the cluster router, the join switch on it, and the Services' load balancer group. */
  async master(): Promise<string[]> {
    const made: string[] = [];
    const router = this.settings.clusterRouter;
    if (await createIfAbsent(this.northbound, "Logical_Router", { name: router, external_ids: OWNED }))
      made.push(`router ${router}`);
    if (await this.makeJoinSwitch()) made.push(`switch ${JOIN_SWITCH}`);
    if (await createIfAbsent(this.northbound, "Load_Balancer_Group", { name: CLUSTER_LB_GROUP }))
      made.push(`load balancer group ${CLUSTER_LB_GROUP}`);
    if (made.length) this.log.info({ event: "topology-made", made }, "cluster topology made (master-init)");
    return made;
  }

  private async makeJoinSwitch(): Promise<boolean> {
    const router = this.settings.clusterRouter;
    const [found] = await this.northbound.transact(NB, [
      op.select("Logical_Switch", [byName(JOIN_SWITCH)], ["_uuid"]),
    ]);
    if (found?.rows?.length) return false;
    const joinIp = clusterRouterJoinIpOf(this.settings.joinSubnet);
    const routerPort = topologyNames.routerToJoin(router);
    try {
      await this.northbound.transact(NB, [
        op.wait("Logical_Switch", [byName(JOIN_SWITCH)], ["name"], "==", [], 0),
        op.insert(
          "Logical_Router_Port",
          {
            name: routerPort,
            mac: macOfAddress(joinIp),
            networks: [`${joinIp}/${prefixOf(this.settings.joinSubnet)}`],
            external_ids: OWNED,
          },
          { uuidName: "lrp" },
        ),
        op.mutate("Logical_Router", [byName(router)], [["ports", "insert", [namedUuid("lrp")]]]),
        op.insert(
          "Logical_Switch_Port",
          {
            name: topologyNames.joinToRouter(router),
            type: "router",
            addresses: ["router"],
            options: { "router-port": routerPort },
            external_ids: OWNED,
          },
          { uuidName: "lsp" },
        ),
        op.insert("Logical_Switch", { name: JOIN_SWITCH, ports: [namedUuid("lsp")], external_ids: OWNED }),
      ]);
      return true;
    } catch (err) {
      if (err instanceof TimedOutError) return false; // another replica made it first
      throw err;
    }
  }

  /** The node's management port, its route and the load balancer group on its switch; writes only what differs. */
  async programNode(plan: NodeTopology): Promise<"written" | "unchanged"> {
    const [switches, ports, routes, groups] = await this.northbound.transact(NB, [
      op.select("Logical_Switch", [byName(plan.switchName)], ["_uuid", "load_balancer_group"]),
      op.select("Logical_Switch_Port", [byName(plan.managementPort)], ["_uuid", "addresses", "external_ids"]),
      op.select("Logical_Router_Static_Route", [ownedByNode(plan.node)], ["_uuid", "ip_prefix", "nexthop"]),
      op.select("Load_Balancer_Group", [byName(CLUSTER_LB_GROUP)], ["_uuid"]),
    ]);
    const nodeSwitch = switches?.rows?.[0];
    // The switch comes from the same stored Node (ovn/switches.ts); its port waits for it.
    if (!nodeSwitch) throw new TopologyError(`node ${plan.node}: its logical switch is not there yet`);
    const ops: Operation[] = [];
    const port = ports?.rows?.[0] as Row | undefined;
    if (port && (port.external_ids as Record<string, string>)[OWNER_KEY] !== OWNER.topology)
      throw new TopologyError(
        `node ${plan.node}: OVN Northbound has a port ${plan.managementPort} that ovn-admission did not make; it is left alone`,
      );
    const owned = { ...MANAGEMENT, [TOPOLOGY_IDS.node]: plan.node };
    if (!port) {
      ops.push(
        op.insert(
          "Logical_Switch_Port",
          { name: plan.managementPort, addresses: [plan.addresses], external_ids: owned },
          { uuidName: "mp" },
        ),
        op.mutate("Logical_Switch", [byName(plan.switchName)], [["ports", "insert", [namedUuid("mp")]]]),
      );
    } else if (JSON.stringify(port.addresses) !== JSON.stringify([plan.addresses])) {
      ops.push(
        op.update("Logical_Switch_Port", [byName(plan.managementPort)], { addresses: [plan.addresses] }),
      );
    }
    const current = (routes?.rows ?? []) as Row[];
    const wanted = plan.route;
    const same = (r: Row) => wanted && r.ip_prefix === wanted.ip_prefix && r.nexthop === wanted.nexthop;
    const stale = current.filter((p) => !same(p)).map((p) => String(p._uuid));
    if (stale.length)
      ops.push(
        op.mutate(
          "Logical_Router",
          [byName(this.settings.clusterRouter)],
          [["static_routes", "delete", stale]],
        ),
      );
    if (wanted && !current.some(same))
      ops.push(
        op.insert("Logical_Router_Static_Route", { ...wanted, external_ids: owned }, { uuidName: "route" }),
        op.mutate(
          "Logical_Router",
          [byName(this.settings.clusterRouter)],
          [["static_routes", "insert", [namedUuid("route")]]],
        ),
      );
    const group = groups?.rows?.[0]?._uuid;
    if (group && !(nodeSwitch.load_balancer_group as string[] | undefined)?.includes(String(group)))
      ops.push(
        op.mutate(
          "Logical_Switch",
          [byName(plan.switchName)],
          [["load_balancer_group", "insert", [String(group)]]],
        ),
      );
    if (ops.length === 0) return "unchanged";
    await this.northbound.transact(NB, ops);
    this.log.info(
      { event: "node-topology-programmed", node: plan.node, managementPort: plan.addresses },
      "node management port programmed",
    );
    return "written";
  }

  /** Management ports and routes of nodes no longer stored (a Node deleted while no replica led) go. */
  async releaseGone(storedNodes: ReadonlySet<string>): Promise<string[]> {
    const [ports, routes] = await this.northbound.transact(NB, [
      op.select("Logical_Switch_Port", [["external_ids", "includes", MANAGEMENT]], ["external_ids"]),
      op.select("Logical_Router_Static_Route", [["external_ids", "includes", MANAGEMENT]], ["external_ids"]),
    ]);
    const nodes = new Set(
      [...(ports?.rows ?? []), ...(routes?.rows ?? [])]
        .map((r) => (r.external_ids as Record<string, string>)[TOPOLOGY_IDS.node] ?? "")
        .filter((node) => node && !storedNodes.has(node)),
    );
    for (const node of nodes) await this.removeNode(node);
    return [...nodes];
  }

  /** A deleted Node: its management port and route go (its switch goes after, once empty). */
  async removeNode(node: string): Promise<void> {
    const [ports, routes] = await this.northbound.transact(NB, [
      op.select("Logical_Switch_Port", [ownedByNode(node)], ["_uuid"]),
      op.select("Logical_Router_Static_Route", [ownedByNode(node)], ["_uuid"]),
    ]);
    const portUuids = (ports?.rows ?? []).map((r) => String(r._uuid));
    const routeUuids = (routes?.rows ?? []).map((r) => String(r._uuid));
    if (!portUuids.length && !routeUuids.length) return;
    await this.northbound.transact(NB, [
      op.mutate("Logical_Switch", [byName(node)], [["ports", "delete", portUuids]]),
      op.mutate(
        "Logical_Router",
        [byName(this.settings.clusterRouter)],
        [["static_routes", "delete", routeUuids]],
      ),
    ]);
    this.log.info({ event: "node-topology-removed", node }, "deleted node's management port removed");
  }
}

export class TopologyError extends Error {
  override name = "TopologyError";
}
