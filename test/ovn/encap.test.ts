/** The encap handler against real Open_vSwitch databases, one ovsdb-server per simulated node. */
import { pino } from "pino";
import t, { type Test } from "tap";
import { ClusterState } from "../../cluster/state.js";
import { EncapHandler, NodeDatabases, planEncapIps } from "../../ovn/encap.js";
import { nodesFor, vsctl, type SimulatedNode } from "../harness/index.js";
import { waitFor } from "../harness/wait.js";

const externalId = (node: SimulatedNode, key: string) =>
  vsctl(node, "--if-exists", "get", "Open_vSwitch", ".", `external_ids:${key}`);
const log = pino({ level: "silent" });

/** The nodes as the API server stored them: a node database is only reached through a stored Node. */
const storedNodes = (nodes: SimulatedNode[]) =>
  ClusterState.of({
    Node: nodes.map((n) => ({
      metadata: { name: n.name },
      status: { addresses: [{ type: "InternalIP", address: "192.168.1.10" }] },
    })),
  });

function handlerFor(t: Test, nodes: SimulatedNode[], retryMs = 200, view = storedNodes(nodes)) {
  const overrides = Object.fromEntries(nodes.map((n) => [n.name, n.ovs.unixRemote]));
  const databases = new NodeDatabases(
    { template: "tcp:{nodeIP}:6640", overrides, ssl: undefined },
    view,
    log,
  );
  const handler = new EncapHandler(databases, view, log, retryMs);
  t.teardown(() => {
    handler.close();
    databases.close();
  });
  return handler;
}

t.test("the plan: default first, then each plane's IP, no repeats", async (t) => {
  t.same(planEncapIps({}, "192.168.1.10", { storage: "192.168.100.10", app: "172.16.0.10" }), {
    encapIps: "192.168.1.10,192.168.100.10,172.16.0.10",
    defaultIp: "192.168.1.10",
  });
  t.same(
    planEncapIps({ "ovn-encap-ip-default": "10.0.0.5" }, "192.168.1.10", { storage: "10.0.0.5" }),
    { encapIps: "10.0.0.5", defaultIp: "10.0.0.5" },
    "the value already set wins, and is not repeated",
  );
  t.throws(() => planEncapIps({}, undefined, { a: "10.0.0.1" }), {
    name: "EncapError",
    message: /no default encap IP/,
  });
});

t.test(
  "annotation changes reach ovn-encap-ip and ovn-encap-ip-default exactly; nothing else is touched",
  async (t) => {
    const [node1, node2] = await nodesFor(t, ["node1", "node2"]);
    const handler = handlerFor(t, [node1 as SimulatedNode, node2 as SimulatedNode]);
    const n1 = node1 as SimulatedNode;
    await vsctl(n1, "set", "Open_vSwitch", ".", "external_ids:ovn-remote=tcp:10.0.0.1:6642");

    await handler.programNode({
      node: "node1",
      internalIP: "192.168.1.10",
      planes: { storage: "192.168.100.10", app: "172.16.0.10" },
    });
    t.equal(
      await externalId(n1, "ovn-encap-ip"),
      '"192.168.1.10,192.168.100.10,172.16.0.10"',
      "the seed's expected value",
    );
    t.equal(await externalId(n1, "ovn-encap-ip-default"), '"192.168.1.10"');

    await handler.programNode({
      node: "node1",
      internalIP: "192.168.1.10",
      planes: { storage: "192.168.100.10" },
    });
    t.equal(
      await externalId(n1, "ovn-encap-ip"),
      '"192.168.1.10,192.168.100.10"',
      "a removed plane's IP is removed",
    );

    // An operator set another default: it is kept, and the InternalIP is not forced back.
    await vsctl(n1, "set", "Open_vSwitch", ".", "external_ids:ovn-encap-ip-default=192.168.1.99");
    await handler.programNode({
      node: "node1",
      internalIP: "192.168.1.10",
      planes: { storage: "192.168.100.10" },
    });
    t.equal(await externalId(n1, "ovn-encap-ip"), '"192.168.1.99,192.168.100.10"');
    t.equal(await externalId(n1, "system-id"), "chassis-node1", "keys we do not own are untouched");
    t.equal(await externalId(n1, "ovn-remote"), '"tcp:10.0.0.1:6642"');
    t.equal(await externalId(node2 as SimulatedNode, "ovn-encap-ip"), "", "the other node is untouched");
    t.same(handler.pending(), []);
  },
);

t.test(
  "a pod's Interface gets its encap IP when it appears, and again when recreated; others are left alone",
  async (t) => {
    const [node] = (await nodesFor(t, ["node1"])) as [SimulatedNode];
    const handler = handlerFor(t, [node]);
    await vsctl(node, "add-br", "br-int");
    await vsctl(
      node,
      "add-port",
      "br-int",
      "other",
      "--",
      "set",
      "Interface",
      "other",
      "external_ids:iface-id=other.default",
    );
    await handler.programInterface({
      node: "node1",
      ifaceId: "storage-pod.storage-namespace",
      encapIp: "10.10.10.10",
    });

    const encapOf = (iface: string) =>
      vsctl(node, "--if-exists", "get", "Interface", iface, "external_ids:encap-ip").catch(() => "");
    await vsctl(
      node,
      "add-port",
      "br-int",
      "veth1",
      "--",
      "set",
      "Interface",
      "veth1",
      "external_ids:iface-id=storage-pod.storage-namespace",
    );
    await waitFor("encap-ip on the new interface", async () => (await encapOf("veth1")) === '"10.10.10.10"');
    t.pass("set when the interface appeared");
    t.equal(await encapOf("other"), "", "an interface of a pod without a plane is left alone");

    await vsctl(node, "del-port", "br-int", "veth1");
    await vsctl(
      node,
      "add-port",
      "br-int",
      "veth2",
      "--",
      "set",
      "Interface",
      "veth2",
      "external_ids:iface-id=storage-pod.storage-namespace",
    );
    await waitFor(
      "encap-ip on the recreated interface",
      async () => (await encapOf("veth2")) === '"10.10.10.10"',
    );
    t.pass("set again when the interface was recreated");

    // Someone clears it: it is put back.
    await vsctl(node, "remove", "Interface", "veth2", "external_ids", "encap-ip");
    await waitFor("encap-ip restored", async () => (await encapOf("veth2")) === '"10.10.10.10"');
    t.pass("kept right");
  },
);

t.test("an unreachable node database is retried until it answers", async (t) => {
  const [node] = (await nodesFor(t, ["node1"])) as [SimulatedNode];
  const handler = handlerFor(t, [node]);
  await node.ovs.stop();
  await t.rejects(
    handler.programNode({ node: "node1", internalIP: "192.168.1.10", planes: { storage: "10.10.10.10" } }),
    "the first attempt fails",
  );
  t.same(handler.pending(), ["node1"]);
  await node.ovs.start();
  await waitFor(
    "applied by the retry",
    async () => (await externalId(node, "ovn-encap-ip")) === '"192.168.1.10,10.10.10.10"',
    20_000,
  );
  await waitFor("nothing pending", async () => handler.pending().length === 0);
  t.pass("applied once the database answered");
});

t.test(
  "a pod interface whose database did not answer gets its encap IP once it does; a deleted pod's is forgotten",
  async (t) => {
    const [node] = (await nodesFor(t, ["node1"])) as [SimulatedNode];
    const handler = handlerFor(t, [node]);
    await vsctl(node, "add-br", "br-int");
    await node.ovs.stop();
    const want = { node: "node1", ifaceId: "s1.storage", encapIp: "10.10.10.10" };
    await t.rejects(handler.programInterface(want), "the first attempt fails");
    await node.ovs.start();
    // Plugged while nobody watched: no event will come for it.
    await vsctl(
      node,
      "add-port",
      "br-int",
      "s1",
      "--",
      "set",
      "Interface",
      "s1",
      "external_ids:iface-id=s1.storage",
    );
    await waitFor(
      "encap-ip set by the retry",
      async () =>
        (await vsctl(node, "--if-exists", "get", "Interface", "s1", "external_ids:encap-ip")) ===
        '"10.10.10.10"',
      20_000,
    );
    t.pass("set once the database answered");
    t.same(handler.followed(), { node1: ["s1.storage"] });
    handler.forgetInterface("node1", "s1.storage");
    t.same(handler.followed(), {}, "a deleted pod's interface is no longer followed");
  },
);

t.test("after a restart, a resync from the view puts back what was admitted", async (t) => {
  const [node] = (await nodesFor(t, ["node1"])) as [SimulatedNode];
  await vsctl(node, "add-br", "br-int");
  // What the cluster holds: the node's planes, and a pod that recorded its encap IP at binding.
  const view = ClusterState.of({
    Node: [
      {
        metadata: {
          name: "node1",
          annotations: { "ovn.kubernetes.io/node_networks": '{"storage":"10.10.10.10"}' },
        },
        status: { addresses: [{ type: "InternalIP", address: "192.168.1.10" }] },
      },
      { metadata: { name: "node2" } },
    ],
    Pod: [
      {
        metadata: {
          name: "storage-pod",
          namespace: "storage-namespace",
          annotations: { "ovn-admission.io/encap-ip": "10.10.10.10" },
        },
        spec: { nodeName: "node1" },
      },
      { metadata: { name: "web", namespace: "default" }, spec: { nodeName: "node1" } },
    ],
  });
  const handler = handlerFor(t, [node], 200, view);
  const result = await handler.resync();
  t.same(result, { nodes: 1, interfaces: 1, failed: [] }, "node2 has no planes and is left alone");
  t.equal(await externalId(node, "ovn-encap-ip"), '"192.168.1.10,10.10.10.10"');
  await vsctl(
    node,
    "add-port",
    "br-int",
    "veth9",
    "--",
    "set",
    "Interface",
    "veth9",
    "external_ids:iface-id=storage-pod.storage-namespace",
  );
  await waitFor(
    "the pod's interface gets its encap IP",
    async () =>
      (await vsctl(node, "--if-exists", "get", "Interface", "veth9", "external_ids:encap-ip").catch(
        () => "",
      )) === '"10.10.10.10"',
  );
  t.pass("interface programmed from the view");
});

t.test("a node that is not stored is never dialled, whatever address is asked for", async (t) => {
  const [node] = (await nodesFor(t, ["node1"])) as [SimulatedNode];
  const handler = handlerFor(t, [node], 200, ClusterState.of({ Node: [] }));
  await t.rejects(
    handler.programNode({ node: "node1", internalIP: "192.168.1.10", planes: { storage: "10.10.10.10" } }),
    { name: "EncapError", message: /node node1 is not a stored Node/ },
  );
  t.equal(await externalId(node, "ovn-encap-ip"), "", "its database was not written");
});
