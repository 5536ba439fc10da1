/**
 * The programmer against real databases: changes to stored objects (as the
 * view's watches apply them) become node encap IPs, pod interface encap IPs,
 * NAT rows and the gateway; a replica that does not lead writes nothing.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { pino } from "pino";
import t, { type Test } from "tap";
import { ClusterState } from "../../cluster/state.js";
import { EncapHandler, NodeDatabases } from "../../ovn/encap.js";
import { GatewayHandler } from "../../ovn/gateway.js";
import { NatHandler } from "../../ovn/nat.js";
import { CLAIMS_ROUTER } from "../../ovn/rows.js";
import { Programmer, type ProgrammerParts } from "../../ovn/programmer.js";
import type { OvsdbClient } from "ovsdb-client";
import { LoadBalancers } from "../../ovn/load-balancers.js";
import type { KubeObject } from "../../domain/kube.js";
import type { NetworkModel } from "../../domain/settings.js";
import { SEED_GATEWAY } from "../fixtures/index.js";
import {
  clusterRouterOn,
  encapIpsOf,
  vsctl,
  nodesFor,
  northboundFor,
  type OvsdbServer,
  type SimulatedNode,
} from "../harness/index.js";
import { waitFor } from "../harness/wait.js";

const log = pino({ level: "silent" });
const run = promisify(execFile);
const nbctl = async (nb: OvsdbServer, ...args: string[]) =>
  (await run("ovn-nbctl", [`--db=${nb.unixRemote}`, ...args])).stdout.trim();

const nodeObject = (planes: Record<string, string>, resourceVersion = "1"): KubeObject => ({
  metadata: {
    name: "node1",
    uid: "node-uid-1",
    resourceVersion,
    annotations: { "ovn.kubernetes.io/node_networks": JSON.stringify(planes) },
  },
  status: { addresses: [{ type: "InternalIP", address: "192.168.1.10" }] },
});

const podObject = (annotations: Record<string, string>, resourceVersion = "10"): KubeObject => ({
  metadata: { name: "web", namespace: "shop", uid: "pod-uid-1", resourceVersion, annotations },
  spec: { nodeName: "node1" },
  status: { phase: "Running" },
});

async function setup(
  t: Test,
  networkModel: NetworkModel = "kube-ovn",
  /** More writers, on the test's Northbound client. */
  more: (northbound: OvsdbClient) => Partial<ProgrammerParts> = () => ({}),
) {
  const nb = await northboundFor(t);
  const [node] = (await nodesFor(t, ["node1"])) as [SimulatedNode];
  const northbound = await clusterRouterOn(t, nb.unixRemote);
  const view = ClusterState.of({ Node: [], Pod: [], ConfigMap: [], Service: [], EndpointSlice: [] });
  const databases = new NodeDatabases(
    { template: "tcp:{nodeIP}:6640", overrides: { node1: node.ovs.unixRemote }, ssl: undefined },
    view,
    log,
  );
  const encap = new EncapHandler(databases, view, log, 200, networkModel);
  const gateway = new GatewayHandler(
    northbound,
    databases,
    view,
    { router: "ovn-cluster", switchName: "external", network: "external", vlan: 0 },
    log,
  );
  const nat = new NatHandler(northbound, "ovn-cluster", log);
  await nat.ensureClaimsRouter();
  const leader = { leading: true };
  const programmer = new Programmer(
    view,
    { encap, gateway, nat, networkModel, ...more(northbound) },
    () => leader.leading,
    log,
  );
  programmer.start();
  t.teardown(() => {
    programmer.stop();
    encap.close();
    databases.close();
  });
  return { nb, node, view, nat, encap, programmer, leader };
}

t.test(
  "a stored Node's planes reach its Open_vSwitch; a replica that does not lead writes nothing",
  async (t) => {
    const { node, view, programmer, leader } = await setup(t);
    const encapIps = () => encapIpsOf(node);
    leader.leading = false;
    view.apply("Node", "ADDED", nodeObject({ storage: "10.10.10.10" }));
    await programmer.idle();
    t.equal(await encapIps(), "", "not the leader: untouched");
    leader.leading = true;
    view.apply("Node", "MODIFIED", nodeObject({ storage: "10.10.10.10", app: "172.16.0.10" }, "2"));
    await programmer.idle();
    t.equal(await encapIps(), '"192.168.1.10,10.10.10.10,172.16.0.10"');
    view.apply("Node", "MODIFIED", nodeObject({ app: "172.16.0.10" }, "3"));
    await programmer.idle();
    t.equal(await encapIps(), '"192.168.1.10,172.16.0.10"', "a removed plane goes");
  },
);

t.test("a stored pod's claim becomes its row; a stored change moves it; deletion releases it", async (t) => {
  const { nb, view, nat, programmer } = await setup(t);
  view.apply("Node", "ADDED", nodeObject({}));
  await nat.claim({
    pod: "shop/web",
    uid: "pod-uid-1",
    holds: { type: "dnat_and_snat", external_ip: "172.56.0.233" },
  });
  view.apply("Pod", "ADDED", podObject({ "ovn.kubernetes.io/eip": "172.56.0.233" }));
  await programmer.idle();
  t.equal(await nbctl(nb, "lr-nat-list", "ovn-cluster"), "", "no IP yet: nothing routes");
  view.apply(
    "Pod",
    "MODIFIED",
    podObject({ "ovn.kubernetes.io/eip": "172.56.0.233", "ovn.kubernetes.io/ip_address": "10.16.0.9" }, "11"),
  );
  await programmer.idle();
  t.match(await nbctl(nb, "lr-nat-list", "ovn-cluster"), /dnat_and_snat\s+172\.56\.0\.233\s+10\.16\.0\.9/);
  t.equal(await nbctl(nb, "lr-nat-list", CLAIMS_ROUTER), "", "the claim moved");
  t.match(await nbctl(nb, "--bare", "--columns=external_ids", "list", "NAT"), /resource-version=11/);
  view.apply("Pod", "MODIFIED", podObject({ "ovn.kubernetes.io/ip_address": "10.16.0.9" }, "12"));
  await programmer.idle();
  t.equal(await nbctl(nb, "lr-nat-list", "ovn-cluster"), "", "the EIP dropped from the stored pod: released");
  view.apply(
    "Pod",
    "MODIFIED",
    podObject(
      { "ovn.kubernetes.io/snat": "172.56.0.200", "ovn.kubernetes.io/ip_address": "10.16.0.9" },
      "13",
    ),
  );
  await programmer.idle();
  t.match(
    await nbctl(nb, "lr-nat-list", "ovn-cluster"),
    /snat\s+172\.56\.0\.200\s+10\.16\.0\.9/,
    "no claim needed: taken now",
  );
  view.apply("Pod", "DELETED", podObject({ "ovn.kubernetes.io/snat": "172.56.0.200" }, "14"));
  await programmer.idle();
  t.equal(await nbctl(nb, "--bare", "--columns=_uuid", "list", "NAT"), "", "deleted: nothing left");
});

t.test(
  "a stored pod's encap IP reaches its interface; the stored gateway ConfigMap is programmed",
  async (t) => {
    const { nb, node, view, programmer } = await setup(t);
    view.apply("Node", "ADDED", nodeObject({ storage: "10.10.10.10" }));
    await vsctl(node, "add-br", "br-int");
    await vsctl(
      node,
      "add-port",
      "br-int",
      "veth1",
      "--",
      "set",
      "Interface",
      "veth1",
      "external_ids:iface-id=web.shop",
    );
    view.apply("Pod", "ADDED", podObject({ "ovn-admission.io/encap-ip": "10.10.10.10" }));
    await waitFor(
      "the interface's encap IP",
      async () =>
        (await vsctl(node, "--if-exists", "get", "Interface", "veth1", "external_ids:encap-ip")) ===
        '"10.10.10.10"',
    );
    t.pass("interface programmed");
    view.apply("ConfigMap", "ADDED", {
      metadata: {
        name: "ovn-external-gw-config",
        namespace: "kube-system",
        uid: "cm-1",
        resourceVersion: "5",
      },
      data: { ...SEED_GATEWAY, "external-gw-nodes": "node1" },
    });
    await programmer.idle();
    t.match(await nbctl(nb, "show"), /switch .* \(external\)[\s\S]*port localnet\.external/);
    view.apply("ConfigMap", "DELETED", {
      metadata: {
        name: "ovn-external-gw-config",
        namespace: "kube-system",
        uid: "cm-1",
        resourceVersion: "6",
      },
      data: {},
    });
    await programmer.idle();
    t.notMatch(await nbctl(nb, "show"), /\(external\)/, "deleted: the gateway's rows go");
  },
);

t.test(
  "ovn-kubernetes model: a plane pod's interface is found by its port name <namespace>_<pod>, by the programmer and by the resync",
  async (t) => {
    const { node, view, encap, programmer } = await setup(t, "ovn-kubernetes");
    view.apply("Node", "ADDED", nodeObject({ storage: "10.10.10.10" }));
    await vsctl(node, "add-br", "br-int");
    for (const [iface, id] of [
      ["veth1", "shop_web"],
      ["veth2", "web.shop"],
    ] as const)
      await vsctl(
        node,
        "add-port",
        "br-int",
        iface,
        "--",
        "set",
        "Interface",
        iface,
        `external_ids:iface-id=${id}`,
      );
    view.apply("Pod", "ADDED", podObject({ "ovn-admission.io/encap-ip": "10.10.10.10" }));
    const encapIpOf = (iface: string) =>
      vsctl(node, "--if-exists", "get", "Interface", iface, "external_ids:encap-ip");
    await waitFor("the interface's encap IP", async () => (await encapIpOf("veth1")) === '"10.10.10.10"');
    await programmer.idle();
    t.equal(await encapIpOf("veth2"), "", "the Kube-OVN spelling of the name is another pod's interface");
    await vsctl(node, "remove", "Interface", "veth1", "external_ids", "encap-ip");
    await waitFor("the resync", async () => {
      await encap.resync();
      return (await encapIpOf("veth1")) === '"10.10.10.10"';
    });
    t.pass("the resync finds it by the same name");
    t.equal(await encapIpOf("veth2"), "");
  },
);

t.test(
  "a burst of one Service's slice changes is one load balancer write, from the latest view",
  async (t) => {
    const writes: string[] = [];
    const { view, programmer } = await setup(t, "ovn-kubernetes", (northbound) => {
      const loadBalancers = new LoadBalancers(northbound, log);
      const program = loadBalancers.program.bind(loadBalancers);
      loadBalancers.program = async (stored, plans) => {
        const outcome = await program(stored, plans);
        writes.push(`${outcome} ${plans.map((p) => Object.values(p.vips).join()).join()}`);
        return outcome;
      };
      return { loadBalancers };
    });
    view.apply("Service", "ADDED", {
      metadata: { name: "web", namespace: "shop", uid: "s1" },
      spec: { clusterIP: "10.96.0.10", ports: [{ name: "http", port: 80, targetPort: 8080 }] },
    });
    for (let n = 1; n <= 20; n++)
      view.apply("EndpointSlice", n === 1 ? "ADDED" : "MODIFIED", {
        metadata: { name: "web-1", namespace: "shop", labels: { "kubernetes.io/service-name": "web" } },
        endpoints: Array.from({ length: n }, (_, i) => ({ addresses: [`192.168.0.${i + 10}`] })),
        ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      });
    await programmer.idle();
    t.ok(writes.length <= 2, `${writes.length} passes for 21 events`);
    t.match(writes.at(-1), /^written .*192\.168\.0\.29:8080/, "the last pass wrote the latest endpoints");
  },
);
