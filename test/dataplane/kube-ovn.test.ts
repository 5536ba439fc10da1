/**
 * Packets, not rows, in the Kube-OVN model: what the service programs from
 * objects stored by a real kube-apiserver, handed to the real ovn-northd and
 * to ovn-controller and ovs-vswitchd on two simulated nodes. Pods plugged as
 * Kube-OVN's CNI plugs them (iface-id `<pod>.<namespace>`) bind to their
 * nodes' chassis; ovn-trace delivers pod to pod within a subnet and across
 * subnets through the cluster router; ofproto/trace shows the tunnel to the
 * peer node; a deleted pod's port is unbound and its address reaches nothing.
 */
import { op } from "ovsdb-client";
import t from "tap";
import { CONVERGE_MS, type DataplaneNode } from "../harness/dataplane.js";
import { waitFor } from "../harness/wait.js";
import { dataplaneCluster, ipv4Flow, ipv4Packet, registerNodes } from "./cluster.js";

const NB = "OVN_Northbound";

t.test("pod to pod on one subnet and across subnets, on two nodes", async (t) => {
  const internalIp = { "node-1": "192.0.2.11", "node-2": "192.0.2.12" };
  const { dp, kube, core, s } = await dataplaneCluster(t, internalIp, []);
  const [node1, node2] = dp.nodes as [DataplaneNode, DataplaneNode];
  await registerNodes(core, internalIp);
  // As a user sets a cluster up: kubectl apply of the Subnets, then of the namespaces and pods.
  await kube.kubectl(
    ["apply", "-f", "-"],
    `apiVersion: kubeovn.io/v1
kind: Subnet
metadata: { name: ovn-default }
spec: { cidrBlock: 10.16.0.0/24, gateway: 10.16.0.1, default: true }
---
apiVersion: kubeovn.io/v1
kind: Subnet
metadata: { name: db-net }
spec: { cidrBlock: 10.17.0.0/24, gateway: 10.17.0.1, namespaces: [db] }
`,
  );
  await waitFor("the view to hold both subnets", () =>
    Boolean(s.service.view.subnet("ovn-default") && s.service.view.subnet("db-net")),
  );
  const applied = await kube.kubectl(
    ["apply", "-f", "-"],
    [
      "apiVersion: v1\nkind: Namespace\nmetadata: { name: shop }",
      "apiVersion: v1\nkind: Namespace\nmetadata: { name: db }",
      ...[
        ["shop", "web", "node-1"],
        ["shop", "api", "node-2"],
        ["db", "store", "node-2"],
      ].map(
        ([namespace, name, node]) =>
          `apiVersion: v1\nkind: Pod\nmetadata: { name: ${name}, namespace: ${namespace} }\nspec: { nodeName: ${node}, containers: [{ name: c, image: i }] }`,
      ),
    ].join("\n---\n"),
  );
  t.match(applied, /pod\/store created/, "kubectl apply created the pods");
  const addressOf = async (namespace: string, name: string) => {
    const stored = await core.readNamespacedPod({ namespace, name });
    const a = stored.metadata?.annotations ?? {};
    return {
      ip: a["ovn.kubernetes.io/ip_address"] as string,
      mac: a["ovn.kubernetes.io/mac_address"] as string,
    };
  };
  const web = await addressOf("shop", "web");
  const api = await addressOf("shop", "api");
  const store = await addressOf("db", "store");
  t.ok(web.ip && api.ip && store.ip, `addressed: ${web.ip} ${api.ip} ${store.ip}`);

  // Plugged as Kube-OVN's CNI plugs a pod, once the service has programmed its port from the stored pod.
  await dp.plug(node1, "web", "web.shop");
  await dp.plug(node2, "api", "api.shop");
  await dp.plug(node2, "store", "store.db");
  await dp.bound("web.shop", node1);
  await dp.bound("api.shop", node2);
  await dp.bound("store.db", node2);
  t.pass("every pod's port is bound to its node's chassis");

  const flow = (to: { ip: string; mac: string }, dstMac = to.mac) => ipv4Flow("web.shop", web, to, dstMac);
  t.same(await dp.outputs("ovn-default", flow(api)), ["api.shop"], "one subnet: delivered to the other pod");
  const physical = ipv4Packet("web", web, api, api.mac);
  const tunnel = await waitFor(
    "node-1's flows to node-2",
    () => dp.tunnelOf(node1, physical),
    CONVERGE_MS,
  ).catch(() => undefined);
  t.equal(tunnel?.remoteIp, "192.0.2.12", "it leaves node-1 on the tunnel to node-2's encap IP");

  // Across subnets: to the subnet's gateway MAC, routed by the cluster router.
  const [lrp] = await s.service.northbound.transact(NB, [
    op.select("Logical_Router_Port", [["name", "==", "ovn-cluster-ovn-default"]], ["mac"]),
  ]);
  const routerMac = String(lrp?.rows?.[0]?.mac ?? "");
  t.ok(routerMac, `the subnet's router port has a MAC (${routerMac})`);
  t.same(
    (await dp.outputs("ovn-default", flow(store, routerMac))).at(-1),
    "store.db",
    "another subnet: routed by the cluster router to the pod",
  );

  // Deleted: the port leaves the switch and its chassis, and its address reaches nothing.
  await core.deleteNamespacedPod({ namespace: "shop", name: "api", gracePeriodSeconds: 0 });
  await waitFor(
    "api's binding to go",
    async () =>
      (await dp.sbctl("--bare", "--columns=_uuid", "find", "Port_Binding", "logical_port=api.shop")) === "",
  );
  t.pass("the deleted pod's port is unbound and gone");
  t.same(await dp.outputs("ovn-default", flow(api)), [], "its address is delivered nowhere");
});
