/**
 * Packets in seed 002's model (--network-model ovn-kubernetes): each node's
 * switch on the cluster router, pods plugged as that CNI plugs them
 * (iface-id `<namespace>_<pod>`, with attached_mac and ip_address): bound on
 * their chassis, delivered across nodes through the cluster router, leaving
 * on the tunnel to the peer node.
 */
import t from "tap";
import { op } from "ovsdb-client";
import { CONVERGE_MS, type DataplaneNode } from "../harness/dataplane.js";
import { waitFor } from "../harness/wait.js";
import { dataplaneCluster, ipv4Flow, ipv4Packet, registerNodes } from "./cluster.js";
import { OVN_KUBERNETES } from "../fixtures/index.js";

const NB = "OVN_Northbound";

t.test("pods on two nodes' switches reach each other through the cluster router", async (t) => {
  const internalIp: Record<string, string> = { "node-1": "192.0.2.11", "node-2": "192.0.2.12" };
  const { dp, core, s } = await dataplaneCluster(t, internalIp, OVN_KUBERNETES);
  const [node1, node2] = dp.nodes as [DataplaneNode, DataplaneNode];
  const routerMacs: Record<string, string> = {};
  for (const created of await registerNodes(core, internalIp))
    t.ok(
      created.metadata?.annotations?.ovn_host_subnet,
      `${created.metadata?.name}: ${created.metadata?.annotations?.ovn_host_subnet}`,
    );
  for (const node of dp.nodes) {
    routerMacs[node.name] = await waitFor(`${node.name}'s switch on the cluster router`, async () => {
      const [lrp] = await s.service.northbound.transact(NB, [
        op.select("Logical_Router_Port", [["name", "==", `rtos-${node.name}`]], ["mac"]),
      ]);
      return lrp?.rows?.[0]?.mac ? String(lrp.rows[0].mac) : undefined;
    });
  }
  await waitFor("the view to hold both nodes' subnets", () =>
    dp.nodes.every((n) => s.service.view.node(n.name)?.annotations.ovn_host_subnet),
  );
  await core.createNamespace({ body: { metadata: { name: "shop" } } });
  const addressed = async (name: string, nodeName: string) => {
    const pod = await core.createNamespacedPod({
      namespace: "shop",
      body: { metadata: { name }, spec: { nodeName, containers: [{ name: "c", image: "i" }] } },
    });
    const ovn = JSON.parse(pod.metadata?.annotations?.ovn ?? "{}") as {
      ip_address?: string;
      mac_address?: string;
    };
    return { ip: (ovn.ip_address ?? "").split("/")[0] as string, mac: ovn.mac_address ?? "" };
  };
  const web = await addressed("web", "node-1");
  const api = await addressed("api", "node-2");
  t.match(web.ip, /^192\.168\.\d+\.\d+$/, `web: ${web.ip} ${web.mac}`);

  // Seed 002's CNI: the interface names its port and says its MAC and address.
  await dp.plug(node1, "web", "shop_web", { attached_mac: web.mac, ip_address: web.ip });
  await dp.plug(node2, "api", "shop_api", { attached_mac: api.mac, ip_address: api.ip });
  await dp.bound("shop_web", node1);
  await dp.bound("shop_api", node2);
  t.pass("<namespace>_<pod> ports bound to their nodes' chassis");

  const toApi = await dp.outputs("node-1", ipv4Flow("shop_web", web, api, routerMacs["node-1"] as string));
  t.equal(toApi.at(-1), "shop_api", "routed from node-1's switch to the pod on node-2's");
  const tunnel = await waitFor(
    "node-1's flows to node-2",
    () => dp.tunnelOf(node1, ipv4Packet("web", web, api, routerMacs["node-1"] as string)),
    CONVERGE_MS,
  ).catch(() => undefined);
  t.equal(tunnel?.remoteIp, "192.0.2.12", "it leaves node-1 on the tunnel to node-2");
});
