/**
 * The external gateway in OVN Northbound, as seed 003 shows it:
 *
 *   switch external                      router ovn-cluster
 *     port localnet.external (localnet)    port ovn-cluster-external (nic-mac, nic-ip)
 *     port external-ovn-cluster (router)     gateway chassis: one per gateway node
 *
 * Every row here carries our owner key; a row of the same name that does not
 * is never touched (the admission is refused instead). Changing the ConfigMap
 * updates these rows in place; disabling or deleting it removes exactly them.
 */
import type { Logger } from "pino";
import { GATEWAY_CONFIG_KEY, NB, OWNER as OWNERS, OWNER_KEY } from "./rows.js";
import { namedUuid, op, type Condition, type Operation, type OvsdbClient, type Row } from "ovsdb-client";
import { GATEWAY_CONFIGMAP } from "../domain/annotations.js";
import { gatewayOf, type GatewayConfig } from "../domain/gateway-config.js";
import type { ClusterView } from "../domain/view.js";

import type { NodeDatabases } from "./encap.js";
import { IntentRefused } from "../domain/intents.js";

const OWNER = OWNERS.gateway;
const OWNED = { [OWNER_KEY]: OWNER, [GATEWAY_CONFIG_KEY]: GATEWAY_CONFIGMAP };

export interface GatewaySettings {
  /** The cluster router (`ovn-cluster` in Kube-OVN). */
  router: string;
  /** The external logical switch (`external`). */
  switchName: string;
  /** The localnet port's network_name: the provider network bridged to the NIC (--external-gateway-net). */
  network: string;
  /** VLAN of the external network, 0 for none (--external-gateway-vlanid). */
  vlan: number;
}

export class GatewayError extends Error {
  override name = "GatewayError";
}

/** Row names, derived as Kube-OVN derives them. */
export function gatewayNames(settings: GatewaySettings) {
  return {
    localnetPort: `localnet.${settings.switchName}`,
    switchPort: `${settings.switchName}-${settings.router}`,
    routerPort: `${settings.router}-${settings.switchName}`,
    gatewayChassis: (chassis: string) => `${settings.router}-${settings.switchName}-${chassis}`,
  };
}

interface Existing {
  uuid: string;
  ours: boolean;
}

export class GatewayHandler {
  constructor(
    private readonly northbound: OvsdbClient,
    private readonly nodeDatabases: NodeDatabases,
    private readonly view: ClusterView,
    private readonly settings: GatewaySettings,
    private readonly log: Logger,
  ) {}

  /** Each gateway node's chassis name: `external_ids:system-id` in its Open_vSwitch database. */
  async chassisOf(nodes: readonly string[]): Promise<{ chassis: string[]; missing: string[] }> {
    const found = await Promise.allSettled(
      nodes.map(async (node) => {
        const client = this.nodeDatabases.client(node);
        // Well inside the admission deadline: a node that does not answer is left out, not waited for.
        await client.connect({ timeoutMs: 1_000 });
        const [selected] = await client.transact(
          "Open_vSwitch",
          [op.select("Open_vSwitch", [], ["external_ids"])],
          {
            timeoutMs: 1_000,
          },
        );
        const systemId = (selected?.rows?.[0]?.external_ids as Record<string, string> | undefined)?.[
          "system-id"
        ];
        if (!systemId) throw new GatewayError("its Open_vSwitch row has no external_ids:system-id");
        return systemId;
      }),
    );
    const chassis: string[] = [];
    const missing: string[] = [];
    found.forEach((result, i) => {
      if (result.status === "fulfilled") chassis.push(result.value);
      else missing.push(`${nodes[i]}: ${(result.reason as Error).message}`);
    });
    return { chassis, missing };
  }

  /**
   * Programs the gateway for `config`, or removes it when there is none.
   * Returns warnings (gateway nodes left out because their chassis is unknown).
   */
  async apply(config: GatewayConfig | undefined): Promise<string[]> {
    if (!config) {
      await this.remove();
      return [];
    }
    const nodes =
      config.mode === "centralized"
        ? config.nodes
        : this.view
            .nodes()
            .map((n) => n.name)
            .sort();
    const { chassis, missing } = await this.chassisOf(nodes);
    if (chassis.length === 0) {
      throw new GatewayError(
        `no gateway chassis: ${missing.length ? missing.join("; ") : "no node to be a gateway"} (a chassis is a node's Open_vSwitch external_ids:system-id)`,
      );
    }
    const names = gatewayNames(this.settings);
    const found = await this.existing();
    const described = {
      logicalSwitch: `logical switch ${this.settings.switchName}`,
      localnetPort: `logical switch port ${names.localnetPort}`,
      switchPort: `logical switch port ${names.switchPort}`,
      routerPort: `logical router port ${names.routerPort}`,
    };
    for (const [what, row] of Object.entries(found.rows) as Array<
      [keyof typeof described, Existing | undefined]
    >) {
      if (row && !row.ours)
        throw new IntentRefused(
          `ConfigMap ${GATEWAY_CONFIGMAP}: OVN Northbound already has a ${described[what]} that ovn-admission did not make; remove it or choose other names (--external-gateway-switch, --cluster-router)`,
        );
    }
    const { router } = this.settings;
    const ops: Operation[] = [op.wait("Logical_Router", [["name", "==", router]], ["name"], "!=", [], 0)];
    const byName = (table: string, name: string): [string, Condition[]] => [table, [["name", "==", name]]];

    const localnet: Row = {
      type: "localnet",
      addresses: ["unknown"],
      options: { network_name: this.settings.network },
      tag_request: this.settings.vlan > 0 ? this.settings.vlan : null,
      external_ids: OWNED,
    };
    const switchPort: Row = {
      type: "router",
      addresses: ["router"],
      options: { "router-port": names.routerPort },
      external_ids: OWNED,
    };
    const switchRefs: string[] = [];
    for (const [uuidName, name, row, existing] of [
      ["localnet", names.localnetPort, localnet, found.rows.localnetPort],
      ["switch_port", names.switchPort, switchPort, found.rows.switchPort],
    ] as const) {
      if (existing) ops.push(op.update(...byName("Logical_Switch_Port", name), row));
      else {
        ops.push(op.insert("Logical_Switch_Port", { ...row, name }, { uuidName }));
        switchRefs.push(uuidName);
      }
    }
    if (found.rows.logicalSwitch) {
      if (switchRefs.length)
        ops.push(
          op.mutate(...byName("Logical_Switch", this.settings.switchName), [
            ["ports", "insert", switchRefs.map(namedUuid)],
          ]),
        );
    } else {
      // No switch of that name may appear meanwhile (Logical_Switch names are not indexed).
      ops.push(
        op.wait("Logical_Switch", [["name", "==", this.settings.switchName]], ["name"], "==", [], 0),
        op.insert("Logical_Switch", {
          name: this.settings.switchName,
          ports: switchRefs.map(namedUuid),
          external_ids: OWNED,
        }),
      );
    }

    const chassisRefs = chassis.map((name, i) => {
      const gcName = names.gatewayChassis(name);
      const priority = Math.max(1, 100 - i);
      const existing = found.gatewayChassis.get(gcName);
      if (existing) {
        ops.push(op.update("Gateway_Chassis", [["_uuid", "==", existing]], { priority }));
        return existing;
      }
      ops.push(
        op.insert(
          "Gateway_Chassis",
          { name: gcName, chassis_name: name, priority, external_ids: OWNED },
          { uuidName: `gc${i}` },
        ),
      );
      return namedUuid(`gc${i}`);
    });
    const routerPort: Row = {
      mac: config.nicMac,
      networks: [config.nicIp],
      gateway_chassis: chassisRefs,
      external_ids: OWNED,
    };
    if (found.rows.routerPort)
      ops.push(op.update(...byName("Logical_Router_Port", names.routerPort), routerPort));
    else
      ops.push(
        op.insert(
          "Logical_Router_Port",
          { ...routerPort, name: names.routerPort },
          { uuidName: "router_port" },
        ),
        op.mutate(...byName("Logical_Router", router), [["ports", "insert", [namedUuid("router_port")]]]),
      );
    try {
      await this.northbound.transact(NB, ops);
    } catch (err) {
      if ((err as { index?: number }).index === 0)
        throw new GatewayError(
          `logical router ${router} does not exist in OVN Northbound (made by the CNI; see --cluster-router)`,
        );
      throw err;
    }
    this.log.info(
      {
        event: "gateway-programmed",
        mode: config.mode,
        chassis,
        missing,
        nicIp: config.nicIp,
        nicMac: config.nicMac,
      },
      "external gateway programmed",
    );
    return missing.map((m) => `gateway node ${m}: left out of the gateway chassis until it answers`);
  }

  /** Removes the gateway rows we made, and only those. */
  async remove(): Promise<boolean> {
    const found = await this.existing();
    const ops: Operation[] = [];
    const { routerPort, logicalSwitch } = found.rows;
    if (routerPort?.ours) {
      // Router ports and gateway chassis are not root rows: unreferenced, OVSDB removes them.
      ops.push(
        op.mutate(
          "Logical_Router",
          [["name", "==", this.settings.router]],
          [["ports", "delete", [routerPort.uuid]]],
        ),
      );
    }
    if (logicalSwitch?.ours) ops.push(op.delete("Logical_Switch", [["_uuid", "==", logicalSwitch.uuid]]));
    if (ops.length === 0) return false;
    await this.northbound.transact(NB, ops);
    this.log.info({ event: "gateway-removed" }, "external gateway removed from OVN Northbound");
    return true;
  }

  /** Programs what the view's ConfigMap says; a ConfigMap with problems is left as it is (and logged). */
  async reconcile(): Promise<void> {
    if (!this.view.knows("ConfigMap")) return;
    const reading = gatewayOf(this.view);
    if (reading.problems.length > 0) {
      this.log.warn(
        { event: "gateway-config-invalid", problems: reading.problems },
        "the gateway ConfigMap has problems; OVN is left as it is",
      );
      return;
    }
    await this.apply(reading.enabled ? reading.config : undefined);
  }

  private async existing(): Promise<{
    rows: Record<"logicalSwitch" | "localnetPort" | "switchPort" | "routerPort", Existing | undefined>;
    gatewayChassis: Map<string, string>;
  }> {
    const names = gatewayNames(this.settings);
    const columns = ["_uuid", "external_ids"];
    const results = await this.northbound.transact(NB, [
      op.select("Logical_Switch", [["name", "==", this.settings.switchName]], columns),
      op.select("Logical_Switch_Port", [["name", "==", names.localnetPort]], columns),
      op.select("Logical_Switch_Port", [["name", "==", names.switchPort]], columns),
      op.select("Logical_Router_Port", [["name", "==", names.routerPort]], columns),
      op.select("Gateway_Chassis", [["external_ids", "includes", { [OWNER_KEY]: OWNER }]], ["_uuid", "name"]),
    ]);
    const one = (i: number): Existing | undefined => {
      const row = results[i]?.rows?.[0];
      if (!row) return undefined;
      return {
        uuid: String(row._uuid),
        ours: (row.external_ids as Record<string, string>)[OWNER_KEY] === OWNER,
      };
    };
    return {
      rows: {
        logicalSwitch: one(0),
        localnetPort: one(1),
        switchPort: one(2),
        routerPort: one(3),
      },
      gatewayChassis: new Map((results[4]?.rows ?? []).map((r) => [String(r.name), String(r._uuid)])),
    };
  }
}
