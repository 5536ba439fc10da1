/**
 * Kube-OVN Subnets as logical switches, programmed from the stored Subnet
 * (ADR 0004): a Logical_Switch named after the subnet with
 * `other_config:subnet` (and `ipv6_prefix`), `exclude_ips` (the subnet's
 * excludeIps plus its gateways), and its router port on the VPC's router
 * (`<router>-<subnet>` with the gateway addresses, and `<subnet>-<router>` on
 * the switch), as Kube-OVN names them. Rows carry `external_ids` owner and
 * subnet; a switch of that name we did not make is never taken over. A
 * deleted Subnet's rows go once no pod port is left on its switch.
 */
import type { Logger } from "pino";
import { byName, NB, SUBNET_IDS } from "./rows.js";
import { namedUuid, op, TimedOutError, type Operation, type OvsdbClient, type Row } from "ovsdb-client";
import type { SubnetFacts } from "../domain/facts.js";
import {
  addressOf,
  firstHostOf,
  macOfAddress,
  networkAddress,
  prefixOf,
  rangeOf,
} from "../domain/addresses.js";
import { DEFAULT_VPC } from "../domain/subnets.js";
import { IntentRefused } from "../domain/intents.js";
import { managementIpOf, topologyNames } from "../domain/topology.js";

const OWNER_KEY = SUBNET_IDS.owner;
const OWNER = SUBNET_IDS.ownerValue;
const SUBNET_KEY = SUBNET_IDS.subnet;

export interface SubnetSwitchSettings {
  /** The default VPC's router (`--cluster-router`). */
  clusterRouter: string;
}

/**
 * What a subnet's switch must hold: pure, from the stored Subnet. An
 * ovn-kubernetes node's switch (`node`) has that model's port names, rtos-<node> and stor-<node>.
 */
export function switchPlanOf(subnet: SubnetFacts, settings: SubnetSwitchSettings, node?: string) {
  const cidrs = subnet.cidrBlock
    .split(",")
    .map((c) => c.trim())
    .filter(Boolean);
  const gateways = subnet.gateway
    .split(",")
    .map((g) => g.trim())
    .filter(Boolean);
  const otherConfig: Record<string, string> = {};
  for (const cidr of cidrs) {
    const range = rangeOf(cidr);
    if (range.family === "ipv4") otherConfig.subnet = range.cidr;
    else otherConfig.ipv6_prefix = networkAddress(cidr);
  }
  const excluded = [...gateways, ...subnet.excludeIps].filter(Boolean);
  if (excluded.length) otherConfig.exclude_ips = excluded.join(" ");
  const router = !subnet.vpc || subnet.vpc === DEFAULT_VPC ? settings.clusterRouter : subnet.vpc;
  // The router's address on the subnet: each gateway with its CIDR's prefix.
  const networks = gateways.map((g, i) => `${addressOf(g)}/${prefixOf(cidrs[i] ?? cidrs[0] ?? "")}`);
  return {
    name: subnet.name,
    otherConfig,
    router,
    routerPort: node ? topologyNames.routerToSwitch(node) : `${router}-${subnet.name}`,
    switchPort: node ? topologyNames.switchToRouter(node) : `${subnet.name}-${router}`,
    networks,
    mac: gateways[0] ? macOfAddress(addressOf(gateways[0])) : undefined,
  };
}

export class SubnetSwitches {
  constructor(
    private readonly northbound: OvsdbClient,
    private readonly settings: SubnetSwitchSettings,
    private readonly log: Logger,
  ) {}

  private owned(subnet: string) {
    return { [OWNER_KEY]: OWNER, [SUBNET_KEY]: subnet };
  }

  /** An ovn-kubernetes node's switch seen as a subnet: its host subnet, the first address its gateway. */
  static nodeSubnet(
    node: { name: string; uid: string; resourceVersion: string },
    subnet: string,
  ): SubnetFacts {
    return {
      key: node.name,
      name: node.name,
      namespace: "",
      uid: node.uid,
      resourceVersion: node.resourceVersion,
      cidrBlock: subnet,
      gateway: firstHostOf(subnet),
      provider: "",
      vpc: "",
      vlan: "",
      nodeNetwork: "",
      namespaces: [],
      isDefault: false,
      // The management port's address (k8s-<node>) is no pod's.
      excludeIps: [managementIpOf(subnet)],
    };
  }

  planOfNode(node: string, subnet: string) {
    return switchPlanOf(
      SubnetSwitches.nodeSubnet({ name: node, uid: "", resourceVersion: "" }, subnet),
      this.settings,
      node,
    );
  }

  /** Creates or updates the subnet's switch and its router port; `node` marks an ovn-kubernetes node's switch. */
  async program(subnet: SubnetFacts, node?: string): Promise<"written" | "unchanged"> {
    if (!subnet.cidrBlock) return "unchanged";
    const plan = switchPlanOf(subnet, this.settings, node);
    const [found, routers, lrp] = await this.northbound.transact(NB, [
      op.select("Logical_Switch", [byName(plan.name)], ["_uuid", "other_config", "external_ids"]),
      op.select("Logical_Router", [byName(plan.router)], ["_uuid"]),
      op.select("Logical_Router_Port", [byName(plan.routerPort)], ["_uuid", "networks", "external_ids"]),
    ]);
    const existing = found?.rows?.[0] as Row | undefined;
    if (existing && (existing.external_ids as Record<string, string>)[OWNER_KEY] !== OWNER) {
      throw new IntentRefused(
        `subnet ${plan.name}: OVN Northbound already has a logical switch of that name that ovn-admission did not make; it is left alone`,
      );
    }
    const hasRouter = (routers?.rows?.length ?? 0) > 0;
    const currentPort = lrp?.rows?.[0] as Row | undefined;
    const sameConfig = existing && JSON.stringify(existing.other_config) === JSON.stringify(plan.otherConfig);
    const samePort =
      !hasRouter ||
      (currentPort &&
        JSON.stringify([...((currentPort.networks as string[]) ?? [])].sort()) ===
          JSON.stringify([...plan.networks].sort()));
    if (sameConfig && samePort) return "unchanged";

    const ops: Operation[] = [];
    if (!existing) {
      ops.push(
        // Two replicas at once make one switch.
        op.wait("Logical_Switch", [byName(plan.name)], ["name"], "==", [], 0),
        op.insert(
          "Logical_Switch",
          {
            name: plan.name,
            other_config: plan.otherConfig,
            external_ids: { ...this.owned(plan.name), ...(node ? { [SUBNET_IDS.node]: node } : {}) },
          },
          { uuidName: "ls" },
        ),
      );
    } else if (!sameConfig) {
      ops.push(op.update("Logical_Switch", [byName(plan.name)], { other_config: plan.otherConfig }));
    }
    if (hasRouter && plan.mac && plan.networks.length) {
      if (currentPort) {
        ops.push(op.update("Logical_Router_Port", [byName(plan.routerPort)], { networks: plan.networks }));
      } else {
        ops.push(
          op.insert(
            "Logical_Router_Port",
            {
              name: plan.routerPort,
              mac: plan.mac,
              networks: plan.networks,
              external_ids: this.owned(plan.name),
            },
            { uuidName: "lrp" },
          ),
          op.mutate("Logical_Router", [byName(plan.router)], [["ports", "insert", [namedUuid("lrp")]]]),
          op.insert(
            "Logical_Switch_Port",
            {
              name: plan.switchPort,
              type: "router",
              addresses: ["router"],
              options: { "router-port": plan.routerPort },
              external_ids: this.owned(plan.name),
            },
            { uuidName: "lsp" },
          ),
          op.mutate("Logical_Switch", [byName(plan.name)], [["ports", "insert", [namedUuid("lsp")]]]),
        );
      }
    }
    try {
      await this.northbound.transact(NB, ops);
    } catch (err) {
      if (err instanceof TimedOutError) return this.program(subnet, node); // another replica made it: update it
      throw err;
    }
    this.log.info(
      {
        event: "subnet-switch-programmed",
        subnet: plan.name,
        uid: subnet.uid,
        resourceVersion: subnet.resourceVersion,
        otherConfig: plan.otherConfig,
        router: hasRouter ? plan.router : undefined,
      },
      hasRouter
        ? "subnet switch programmed"
        : `subnet switch programmed without a router port: no router ${plan.router}`,
    );
    return "written";
  }

  /** Removes a deleted subnet's rows, unless pod ports are still on its switch (then they go first). */
  async remove(
    name: string,
    plan: { router: string; routerPort: string; switchPort: string },
  ): Promise<"removed" | "kept" | "unchanged"> {
    const [found] = await this.northbound.transact(NB, [
      op.select("Logical_Switch", [["name", "==", name]], ["_uuid", "ports", "external_ids"]),
    ]);
    const existing = found?.rows?.[0] as Row | undefined;
    if (!existing || (existing.external_ids as Record<string, string>)[OWNER_KEY] !== OWNER)
      return "unchanged";
    const routerSide = new Set(await this.uuidsOf("Logical_Switch_Port", plan.switchPort));
    const podPorts = ((existing.ports as string[] | null) ?? []).filter(
      (uuid) => !routerSide.has(String(uuid)),
    );
    if (podPorts.length > 0) {
      this.log.warn(
        { event: "subnet-switch-kept", subnet: name },
        "deleted subnet's switch kept: pod ports are still on it",
      );
      return "kept";
    }
    await this.northbound.transact(NB, [
      op.mutate(
        "Logical_Router",
        [["name", "==", plan.router]],
        [["ports", "delete", await this.uuidsOf("Logical_Router_Port", plan.routerPort)]],
      ),
      op.delete("Logical_Switch", [["name", "==", name]]),
    ]);
    this.log.info({ event: "subnet-switch-removed", subnet: name }, "deleted subnet's switch removed");
    return "removed";
  }

  private async uuidsOf(table: string, name: string): Promise<string[]> {
    const [found] = await this.northbound.transact(NB, [op.select(table, [["name", "==", name]], ["_uuid"])]);
    return (found?.rows ?? []).map((r) => String(r._uuid));
  }
}
