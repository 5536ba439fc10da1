/**
 * The service's test harness. OVSDB servers come from the ovsdb-sandbox
 * package (real ovsdb-server processes, the same code `npm start` uses for
 * its local Northbound); this module adds what the service's tests need on
 * top: one Open_vSwitch database per simulated node, and tap wiring.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Test } from "tap";
import { op, OvsdbClient } from "ovsdb-client";
import {
  startNorthbound,
  startOpenVswitch,
  startRaftCluster,
  type OvsdbServer,
  type RaftCluster,
} from "ovsdb-sandbox";

export * from "ovsdb-sandbox";

/** A standalone OVN_Northbound for one test, stopped after it. */
export async function northboundFor(t: Test): Promise<OvsdbServer> {
  const server = await startNorthbound();
  t.teardown(() => server.stop());
  return server;
}

/** A 3-member RAFT OVN_Northbound for one test. */
export async function raftNorthboundFor(t: Test): Promise<RaftCluster> {
  const cluster = await startRaftCluster("northbound", { electionTimerMs: 200 });
  t.teardown(() => cluster.stop());
  return cluster;
}

export interface SimulatedNode {
  name: string;
  /** The node's Open_vSwitch database, with `system-id` and `hostname` set as ovs-vswitchd would. */
  ovs: OvsdbServer;
}

/** ovs-vsctl on the node's database (--no-wait: there is no ovs-vswitchd); its output, trimmed. */
export async function vsctl(node: SimulatedNode, ...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)("ovs-vsctl", [
    `--db=${node.ovs.unixRemote}`,
    "--no-wait",
    ...args,
  ]);
  return stdout.trim();
}

/** The node's `external_ids:ovn-encap-ip`, quoted as ovs-vsctl prints it ("" when unset). */
export const encapIpsOf = (node: SimulatedNode): Promise<string> =>
  vsctl(node, "--if-exists", "get", "Open_vSwitch", ".", "external_ids:ovn-encap-ip");

/** One Open_vSwitch database per node name, started in parallel, stopped after the test. */
export async function nodesFor(t: Test, names: string[]): Promise<SimulatedNode[]> {
  const nodes = await Promise.all(
    names.map(async (name) => ({
      name,
      ovs: await startOpenVswitch({ externalIds: { "system-id": `chassis-${name}`, hostname: name } }),
    })),
  );
  t.teardown(() => Promise.all(nodes.map((n) => n.ovs.stop())));
  return nodes;
}

/** A connected OVN_Northbound client for one test, closed after it. */
export async function northboundClientFor(t: Test, remote: string): Promise<OvsdbClient> {
  const client = new OvsdbClient({ remote, database: "OVN_Northbound", backoff: { minMs: 50, maxMs: 400 } });
  t.teardown(() => client.close());
  await client.connect({ timeoutMs: 10_000 });
  return client;
}

/**
 * A Northbound client for one test, with the cluster router the CNI would
 * have made (`ovn-cluster`): what gateway and NAT tests start from.
 */
export async function clusterRouterOn(t: Test, remote: string): Promise<OvsdbClient> {
  const client = await northboundClientFor(t, remote);
  await client.transact("OVN_Northbound", [op.insert("Logical_Router", { name: "ovn-cluster" })]);
  return client;
}
