/**
 * What the service calls its rows in OVN, in one place: the database names,
 * the `external_ids` keys that mark a row as ours and name the object it
 * serves, the rows that are ours alone (the claims router and switch), and
 * the one way to make a named row that may already exist.
 */
import { op, TimedOutError, type OvsdbClient, type Row } from "ovsdb-client";
import { v5 as uuidV5 } from "uuid";

export const NB = "OVN_Northbound";

/** The key every row of ours carries; its value says which writer owns it. */
export const OWNER_KEY = "ovn-admission.io/owner";

/** Values of OWNER_KEY: which writer of ours owns the row. */
export const OWNER = {
  port: "pod-port",
  nat: "nat",
  subnet: "subnet",
  gateway: "external-gateway",
  /** ovn-kubernetes model: the cluster router, join switch, management ports and gateway routers. */
  topology: "topology",
  /** ovn-kubernetes model: Services' load balancers. */
  loadBalancer: "load-balancer",
  /** `npm start`'s local Northbound: the cluster router made for development. */
  development: "development",
} as const;

/** Keys that name what a row serves, shared by every table. */
const SERVES = {
  owner: OWNER_KEY,
  pod: "ovn-admission.io/pod",
  /** The object's uid: on a claim, the one the admission saw (empty when unknown); on a row, the stored object's. */
  uid: "ovn-admission.io/uid",
  /** On a programmed row: the resourceVersion of the stored object it was programmed from. */
  resourceVersion: "ovn-admission.io/resource-version",
  /** When the row was written or claimed (ms since the epoch). */
  since: "ovn-admission.io/since",
} as const;

/** external_ids keys of our logical switch ports. */
export const PORT_IDS = {
  ...SERVES,
  /** The subnet (logical switch) the addresses belong to, claimed or programmed. */
  subnet: "ovn-admission.io/logical-switch",
  /** "<subnet>|<address>" per family, and "<subnet>|<mac>": what the `wait`s look for. */
  ipv4: "ovn-admission.io/address-ipv4",
  ipv6: "ovn-admission.io/address-ipv6",
  mac: "ovn-admission.io/mac",
} as const;

/** external_ids keys of our NAT rows. */
export const NAT_IDS = SERVES;

/** external_ids of our subnet switches (Kube-OVN Subnets, and ovn-kubernetes node switches). */
export const SUBNET_IDS = {
  owner: OWNER_KEY,
  ownerValue: OWNER.subnet,
  subnet: "ovn-admission.io/subnet",
  /** ovn-kubernetes: the node whose switch it is. */
  node: "ovn-admission.io/node",
  uid: SERVES.uid,
  since: SERVES.since,
} as const;

/** external_ids of the ovn-kubernetes topology's rows: the node a row serves. */
export const TOPOLOGY_IDS = {
  owner: OWNER_KEY,
  node: "ovn-admission.io/node",
  /** "management" (minion-init) or "gateway" (gateway-init). */
  role: "ovn-admission.io/role",
} as const;

/** external_ids of a Service's load balancer, as ovn-kubernetes marks them, and ours. */
export const LOAD_BALANCER_IDS = {
  owner: OWNER_KEY,
  kind: "k8s.ovn.org/kind",
  service: "k8s.ovn.org/owner",
  uid: SERVES.uid,
  resourceVersion: SERVES.resourceVersion,
} as const;

/** The group every node switch (and gateway router) holds, so a Service is one write (ovn-kubernetes' clusterLBGroup). */
export const CLUSTER_LB_GROUP = "clusterLBGroup";

/** The gateway's rows also name the ConfigMap they come from. */
export const GATEWAY_CONFIG_KEY = "ovn-admission.io/config";

/** The router that holds NAT claims: disabled and without ports, so its NAT rows route nothing. */
export const CLAIMS_ROUTER = "ovn-admission-claims";
/** The switch that holds claimed ports: nothing routes to it, and its ports are disabled. */
export const CLAIMS_SWITCH = "ovn-admission-claims";

/**
 * A claim's port name beside another control plane (`--alongside`): never a
 * name that control plane gives a port (a `/` is in no Kubernetes name), so
 * its own `<pod>.<namespace>` port is never refused as a duplicate name.
 */
export const claimPortName = (pod: string): string => `ovn-admission/${pod}`;

/** The namespace of our name-based row UUIDs (RFC 9562 version 5); never to change, or claims stop meeting. */
const CLAIM_UUID_NAMESPACE = "3b0a1f0e-8c1d-4d7e-9a55-2f6f0c1c8e11";

/**
 * The UUID of the port that holds an address key ("<subnet>|<address>"):
 * the same for every replica, so the address is taken by the row's UUID
 * itself. A `wait` on `_uuid ==` is a hash lookup in ovsdb-server, where a
 * `wait` on an `external_ids` key is a scan of every port of the table.
 */
export const claimUuid = (addressKey: string): string => uuidV5(addressKey, CLAIM_UUID_NAMESPACE);

/** The condition that finds a row by its name. */
export const byName = (name: string): [string, "==", string] => ["name", "==", name];

/**
 * Inserts `row` into `table` unless a row of its name exists: the insert is
 * guarded by a `wait` on the name, so two replicas at once make one. True
 * when this call made it.
 */
export async function createIfAbsent(
  northbound: OvsdbClient,
  table: string,
  row: Row & { name: string },
): Promise<boolean> {
  const named = byName(row.name);
  const [found] = await northbound.transact(NB, [op.select(table, [named], ["_uuid"])]);
  if (found?.rows?.length) return false;
  try {
    await northbound.transact(NB, [op.wait(table, [named], ["name"], "==", [], 0), op.insert(table, row)]);
    return true;
  } catch (err) {
    if (err instanceof TimedOutError) return false; // another replica made it first
    throw err;
  }
}
