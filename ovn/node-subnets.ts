/**
 * ovn-kubernetes node subnets (seed 002: master-init/minion-init with
 * `--cluster-ip-subnet` and a switch subnet per node, done by hand there).
 * At a Node's CREATE the next free block of `--cluster-ip-subnet` is claimed
 * by inserting the node's logical switch with `other_config:subnet`, under a
 * `wait` that fails when another switch already has that subnet: two replicas
 * can never give one subnet to two nodes. The answer is the Node's
 * `ovn_host_subnet` annotation. Its router port comes from the stored Node
 * (the programmer); a switch whose Node is never stored, or is deleted, is
 * released by the reconciler once it has no pod ports.
 */
import type { Logger } from "pino";
import { op, TimedOutError, type OvsdbClient, type Row } from "ovsdb-client";
import { firstHostOf, numberToAddress, prefixOf, rangeOf } from "../domain/addresses.js";
import { ANNOTATION } from "../domain/annotations.js";
import { type Intent, IntentRefused, type IntentResult } from "../domain/intents.js";
import type { IntentHandler } from "./intent-runner.js";
import type { SubnetSwitches } from "./switches.js";
import { NB, SUBNET_IDS } from "./rows.js";
import { MANAGEMENT_MAC_ANNOTATION, managementIpOf, managementPortOf } from "../domain/topology.js";

export interface NodeSubnetSettings {
  clusterIpSubnet: string;
  nodeSubnetPrefix: number;
}

/** What a Node's CREATE asks for: its name and uid, and whether it names its management port's MAC itself. */
export interface NodeSubnetClaim extends Record<string, unknown> {
  node: string;
  uid: string;
  hasManagementMac?: boolean;
}

/** The Node's subnet and, unless its agent named one, its management port's MAC (derived from the port's address). */
function nodeAnnotations(subnet: string, claim: NodeSubnetClaim): Record<string, string> {
  return {
    [ANNOTATION.hostSubnet]: subnet,
    ...(claim.hasManagementMac ? {} : { [MANAGEMENT_MAC_ANNOTATION]: managementPortOf(subnet).mac }),
  };
}

export class NodeSubnets {
  constructor(
    private readonly northbound: OvsdbClient,
    private readonly settings: NodeSubnetSettings,
    private readonly switches: SubnetSwitches,
    private readonly log: Logger,
  ) {}

  get intents(): Record<string, IntentHandler> {
    return {
      "node-subnet-claim": (intent: Intent, _signal, mode) =>
        this.claim(intent.spec as NodeSubnetClaim, mode.dryRun),
    };
  }

  private async switchesWithSubnets(): Promise<Row[]> {
    const [found] = await this.northbound.transact(NB, [
      op.select("Logical_Switch", [], ["name", "other_config", "external_ids", "ports"]),
    ]);
    return found?.rows ?? [];
  }

  /** The node's subnet: the one it holds, else the next free block, taken under a `wait`. */
  async claim(claim: NodeSubnetClaim, dryRun = false): Promise<IntentResult> {
    const { clusterIpSubnet, nodeSubnetPrefix } = this.settings;
    const cluster = rangeOf(clusterIpSubnet);
    const bits = cluster.family === "ipv4" ? 32 : 128;
    const block = 1n << BigInt(bits - nodeSubnetPrefix);
    const blocks = (cluster.last - cluster.first + 1n) / block;
    for (let attempt = 1; attempt <= 10; attempt++) {
      const switches = await this.switchesWithSubnets();
      const mine = switches.find(
        (s) =>
          s.name === claim.node && (s.external_ids as Record<string, string>)[SUBNET_IDS.node] === claim.node,
      );
      const held = (mine?.other_config as Record<string, string> | undefined)?.subnet;
      if (held) return { annotations: nodeAnnotations(held, claim) };
      const used = new Set(
        switches.map((s) => (s.other_config as Record<string, string>).subnet).filter(Boolean),
      );
      let subnet: string | undefined;
      for (let i = 0n; i < blocks && !subnet; i++) {
        const candidate = `${numberToAddress(cluster.first + i * block, cluster.family)}/${nodeSubnetPrefix}`;
        if (!used.has(candidate)) subnet = candidate;
      }
      if (!subnet) {
        throw new IntentRefused(
          `--cluster-ip-subnet ${clusterIpSubnet} has no free /${nodeSubnetPrefix} left for node ${claim.node} (${blocks} node subnets, all given)`,
        );
      }
      const annotations = nodeAnnotations(subnet, claim);
      if (dryRun) return { annotations };
      try {
        await this.northbound.transact(NB, [
          op.wait("Logical_Switch", [["name", "==", claim.node]], ["name"], "==", [], 0),
          op.wait("Logical_Switch", [["other_config", "includes", { subnet }]], ["name"], "==", [], 0),
          op.insert("Logical_Switch", {
            name: claim.node,
            other_config: { subnet, exclude_ips: `${firstHostOf(subnet)} ${managementIpOf(subnet)}` },
            external_ids: {
              [SUBNET_IDS.owner]: SUBNET_IDS.ownerValue,
              [SUBNET_IDS.subnet]: claim.node,
              [SUBNET_IDS.node]: claim.node,
              [SUBNET_IDS.uid]: claim.uid,
              [SUBNET_IDS.since]: String(Date.now()),
            },
          }),
        ]);
        this.log.info({ event: "node-subnet-claimed", node: claim.node, subnet }, "node subnet claimed");
        return { annotations };
      } catch (err) {
        // Another replica gave that block (or this node a switch) first: read again.
        if (!(err instanceof TimedOutError)) throw err;
        if (err.index === 0) {
          const again = (await this.switchesWithSubnets()).find((s) => s.name === claim.node);
          if ((again?.external_ids as Record<string, string> | undefined)?.[SUBNET_IDS.node] !== claim.node)
            throw new IntentRefused(
              `node ${claim.node}: OVN Northbound already has a logical switch of that name that ovn-admission did not make`,
            );
        }
      }
    }
    throw new IntentRefused(`node ${claim.node}: no node subnet could be taken after 10 attempts; try again`);
  }

  /** Node switches whose Node is not stored (never was, or deleted) and older than the grace go, once empty. */
  async releaseGone(storedNodes: ReadonlySet<string>, graceMs: number): Promise<string[]> {
    const released: string[] = [];
    const now = Date.now();
    for (const s of await this.switchesWithSubnets()) {
      const ids = s.external_ids as Record<string, string>;
      const node = ids[SUBNET_IDS.node];
      if (!node || storedNodes.has(node) || now - Number(ids[SUBNET_IDS.since] ?? 0) < graceMs) continue;
      const subnet = (s.other_config as Record<string, string>).subnet ?? "";
      const outcome = await this.switches.remove(node, this.switches.planOfNode(node, subnet));
      if (outcome === "removed") released.push(`${node} ${subnet} /${prefixOf(subnet)}`);
    }
    if (released.length) this.log.info({ event: "node-subnets-released", released }, "node subnets released");
    return released;
  }
}
