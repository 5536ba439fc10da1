/**
 * Seed 002's master-init, minion-init and the Services' load balancers
 * against a real OVN_Northbound: two replicas at once make one topology, a
 * node's rows are written once and removed exactly, a Service's load
 * balancers sit in the group every node switch holds and go with it.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { pino } from "pino";
import t from "tap";
import { op } from "ovsdb-client";
import { trim } from "../../domain/facts.js";
import { loadBalancersOf } from "../../domain/services.js";
import { LoadBalancers } from "../../ovn/load-balancers.js";
import { SubnetSwitches } from "../../ovn/switches.js";
import { nodeTopologyOf, Topology } from "../../ovn/topology.js";
import { northboundClientFor, northboundFor, type OvsdbServer } from "../harness/index.js";

const log = pino({ level: "silent" });
const NB = "OVN_Northbound";
const SETTINGS = { clusterRouter: "ovn_cluster_router", joinSubnet: "100.64.0.0/16" };

const nbctl = async (nb: OvsdbServer, ...args: string[]): Promise<string> =>
  (await promisify(execFile)("ovn-nbctl", [`--db=${nb.unixRemote}`, ...args])).stdout.trim();

const node = trim.Node({
  metadata: { name: "node-1", uid: "u1", annotations: { ovn_host_subnet: "192.168.1.0/24" } },
  status: { addresses: [{ type: "InternalIP", address: "192.0.2.11" }] },
});

t.test(
  "two replicas at once make one cluster router, one join switch and one load balancer group",
  async (t) => {
    const nb = await northboundFor(t);
    const [a, b] = [
      new Topology(await northboundClientFor(t, nb.unixRemote), SETTINGS, log),
      new Topology(await northboundClientFor(t, nb.unixRemote), SETTINGS, log),
    ];
    const made = await Promise.all([a.master(), b.master(), a.master()]);
    t.same(made.flat().sort(), [
      "load balancer group clusterLBGroup",
      "router ovn_cluster_router",
      "switch join",
    ]);
    t.equal(
      await nbctl(nb, "--bare", "--columns=name", "find", "Logical_Router", "name=ovn_cluster_router"),
      "ovn_cluster_router",
    );
    t.equal(
      await nbctl(nb, "get", "Logical_Router_Port", "rtoj-ovn_cluster_router", "networks"),
      '["100.64.0.1/16"]',
    );
    t.equal(
      await nbctl(nb, "get", "Logical_Switch_Port", "jtor-ovn_cluster_router", "options:router-port"),
      "rtoj-ovn_cluster_router",
      "the join switch's port faces the cluster router",
    );
    t.same(await a.master(), [], "again: nothing to make");
  },
);

t.test(
  "a node's management port, route and load balancer group: written once, removed exactly",
  async (t) => {
    const nb = await northboundFor(t);
    const client = await northboundClientFor(t, nb.unixRemote);
    const topology = new Topology(client, SETTINGS, log);
    await topology.master();
    const plan = nodeTopologyOf(node);
    if (!plan) throw new Error("no plan");
    await t.rejects(topology.programNode(plan), { name: "TopologyError" }, "no switch yet: retried later");
    await new SubnetSwitches(client, { clusterRouter: SETTINGS.clusterRouter }, log).program(
      SubnetSwitches.nodeSubnet(node, "192.168.1.0/24"),
      "node-1",
    );
    t.equal(await topology.programNode(plan), "written");
    t.equal(await topology.programNode(plan), "unchanged", "the same Node again writes nothing");
    t.equal(
      await nbctl(nb, "get", "Logical_Switch_Port", "k8s-node-1", "addresses"),
      '["0a:58:c0:a8:01:02 192.168.1.2"]',
    );
    t.equal(
      await nbctl(nb, "lr-route-list", "ovn_cluster_router").then((r) =>
        /192\.0\.2\.11\s+192\.168\.1\.2/.test(r),
      ),
      true,
      "the node's IP via its management port",
    );
    t.equal(
      await nbctl(nb, "get", "Logical_Switch", "node-1", "other_config:exclude_ips"),
      '"192.168.1.1 192.168.1.2"',
      "its router's and management port's addresses are no pod's",
    );
    t.notSame(
      await nbctl(nb, "get", "Logical_Switch", "node-1", "load_balancer_group"),
      "[]",
      "the switch holds the group",
    );

    await topology.removeNode("node-1");
    t.equal(
      await nbctl(nb, "--bare", "--columns=name", "find", "Logical_Switch_Port", "name=k8s-node-1"),
      "",
    );
    t.equal(await nbctl(nb, "lr-route-list", "ovn_cluster_router"), "", "and its route");
    t.equal(
      await nbctl(nb, "get", "Logical_Router_Port", "rtos-node-1", "networks"),
      '["192.168.1.1/24"]',
      "the switch's router port stays (it goes with the switch)",
    );
  },
);

t.test(
  "a Service's load balancers: in the group, updated in place, removed with it; strays reconciled away",
  async (t) => {
    const nb = await northboundFor(t);
    const client = await northboundClientFor(t, nb.unixRemote);
    await new Topology(client, SETTINGS, log).master();
    const balancers = new LoadBalancers(client, log);
    const service = trim.Service({
      metadata: { name: "web", namespace: "shop", uid: "s1", resourceVersion: "1" },
      spec: { clusterIP: "10.96.0.10", ports: [{ name: "http", port: 80, targetPort: 8080 }] },
    });
    const slice = (ips: string[]) =>
      trim.EndpointSlice({
        metadata: { name: "web-1", namespace: "shop", labels: { "kubernetes.io/service-name": "web" } },
        endpoints: ips.map((ip) => ({ addresses: [ip] })),
        ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      });
    const stored = { service: "shop/web", uid: "s1", resourceVersion: "1" };
    t.equal(
      await balancers.program(stored, loadBalancersOf(service, [slice(["192.168.1.3", "192.168.2.3"])])),
      "written",
    );
    const uuid = await nbctl(
      nb,
      "--bare",
      "--columns=_uuid",
      "find",
      "Load_Balancer",
      "name=Service_shop/web_TCP",
    );
    t.match(
      await nbctl(nb, "get", "Load_Balancer_Group", "clusterLBGroup", "load_balancer"),
      uuid,
      "in the group",
    );
    t.equal(
      await balancers.program(stored, loadBalancersOf(service, [slice(["192.168.2.3", "192.168.1.3"])])),
      "unchanged",
    );
    await balancers.program(stored, loadBalancersOf(service, [slice(["192.168.2.3"])]));
    t.equal(
      await nbctl(nb, "get", "Load_Balancer", uuid, "vips"),
      '{"10.96.0.10:80"="192.168.2.3:8080"}',
      "updated in place",
    );
    t.equal(await balancers.program(stored, []), "written");
    t.equal(
      await nbctl(nb, "--bare", "--columns=_uuid", "find", "Load_Balancer"),
      "",
      "removed with the Service",
    );
    t.equal(
      await nbctl(nb, "get", "Load_Balancer_Group", "clusterLBGroup", "load_balancer"),
      "[]",
      "and from the group",
    );

    // A Service deleted while no replica led: its rows go at the next reconcile; one of ours not ours is kept.
    await balancers.program(
      { service: "shop/gone", uid: "g", resourceVersion: "1" },
      loadBalancersOf(
        trim.Service({
          metadata: { name: "gone", namespace: "shop" },
          spec: { clusterIP: "10.96.0.11", ports: [{ port: 80 }] },
        }),
        [],
      ),
    );
    await client.transact(NB, [
      op.insert("Load_Balancer", { name: "someone-elses", protocol: "tcp", vips: { "10.96.0.99:80": "" } }),
    ]);
    t.same(await balancers.reconcile([]), ["shop/gone"]);
    t.equal(
      await nbctl(nb, "--bare", "--columns=name", "find", "Load_Balancer"),
      "someone-elses",
      "only rows it made are removed",
    );
  },
);
