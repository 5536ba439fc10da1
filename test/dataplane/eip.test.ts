/**
 * Seed 003's EIP through the real pipeline (Kube-OVN model, centralized
 * gateway): the gateway ConfigMap as stored becomes the external switch, its
 * localnet port and the gateway router port, bound to the first gateway
 * node's chassis (and moved when another node takes its place); a packet
 * from the external network to a pod's EIP reaches the pod, and a pod's
 * packet to the external network leaves with its EIP (or SNAT address) as
 * source.
 */
import t from "tap";
import { op } from "ovsdb-client";
import type { DataplaneNode } from "../harness/dataplane.js";
import { SEED_GATEWAY } from "../fixtures/index.js";
import { waitFor } from "../harness/wait.js";
import { dataplaneCluster, ipv4Flow, registerNodes } from "./cluster.js";

const EIP = "172.56.0.233";
const SNAT = "172.56.0.200";

t.test(
  "an EIP reaches its pod, the pod leaves with its EIP; the gateway port follows external-gw-nodes",
  async (t) => {
    const internalIp: Record<string, string> = { "node-1": "192.0.2.11", "node-2": "192.0.2.12" };
    const { dp, kube, core, s } = await dataplaneCluster(t, internalIp, []);
    const [node1, node2] = dp.nodes as [DataplaneNode, DataplaneNode];
    await registerNodes(core, internalIp);
    await kube.createSubnet("ovn-default", {
      cidrBlock: "10.16.0.0/24",
      gateway: "10.16.0.1",
      default: true,
    });
    const gatewayConfig = (nodes: string) => ({
      metadata: { name: "ovn-external-gw-config", namespace: "kube-system" },
      data: { ...SEED_GATEWAY, "external-gw-nodes": nodes },
    });
    await core.createNamespacedConfigMap({ namespace: "kube-system", body: gatewayConfig("node-1") });
    await waitFor("the view to hold the subnet and the gateway", () =>
      Boolean(s.service.view.subnet("ovn-default") && s.service.view.gatewayConfig()),
    );
    await core.createNamespace({ body: { metadata: { name: "shop" } } });
    const addressed = async (name: string, annotations: Record<string, string>) => {
      const created = await core.createNamespacedPod({
        namespace: "shop",
        body: {
          metadata: { name, annotations },
          spec: { nodeName: "node-2", containers: [{ name: "c", image: "i" }] },
        },
      });
      const a = created.metadata?.annotations ?? {};
      await dp.plug(node2, name, `${name}.shop`);
      await dp.bound(`${name}.shop`, node2);
      return {
        ip: a["ovn.kubernetes.io/ip_address"] as string,
        mac: a["ovn.kubernetes.io/mac_address"] as string,
      };
    };
    const web = await addressed("web", { "ovn.kubernetes.io/eip": EIP });
    const batch = await addressed("batch", { "ovn.kubernetes.io/snat": SNAT });

    // The gateway router port's chassisredirect port lives on the gateway node. (With several, the
    // active one is chosen by BFD between them, which the dummy datapath does not carry.)
    const redirect = "cr-ovn-cluster-external";
    const chassisOf = async (port: string) =>
      dp.sbctl("--bare", "--columns=chassis", "find", "Port_Binding", `logical_port=${port}`);
    const chassisUuid = async (node: DataplaneNode) =>
      dp.sbctl("--bare", "--columns=_uuid", "find", "Chassis", `name=${node.chassis}`);
    await waitFor(
      "the gateway port bound to node-1",
      async () => (await chassisOf(redirect)) === (await chassisUuid(node1)),
    );
    t.pass("the gateway port is bound to the gateway node's chassis");

    // From the external network (its gateway, 172.56.0.1) to the EIP, at the router port's MAC.
    const nicMac = SEED_GATEWAY["nic-mac"] as string;
    const inbound = await waitFor("the EIP's NAT to be programmed", async () => {
      const outputs = await dp.outputs(
        "external",
        ipv4Flow("localnet.external", { ip: "172.56.0.1", mac: "0a:00:00:00:00:01" }, { ip: EIP }, nicMac),
      );
      return outputs.at(-1) === "web.shop" ? outputs : undefined;
    }).catch(() => undefined);
    t.equal(inbound?.at(-1), "web.shop", "a packet from the external network to the EIP reaches its pod");

    // From the pod to an address of the external network: SNAT'd to the EIP on its way out.
    const [routerPort] = await s.service.northbound.transact("OVN_Northbound", [
      op.select("Logical_Router_Port", [["name", "==", "ovn-cluster-ovn-default"]], ["mac"]),
    ]);
    const gatewayMac = String(routerPort?.rows?.[0]?.mac ?? "");
    // The neighbour on the external network has answered ARP (what ovn-controller would learn).
    const router = await dp.sbctl(
      "--bare",
      "--columns=_uuid",
      "find",
      "Datapath_Binding",
      "external_ids:name=ovn-cluster",
    );
    await dp.sbctl(
      "create",
      "MAC_Binding",
      "logical_port=ovn-cluster-external",
      "ip=172.56.0.50",
      'mac="0a:00:00:00:00:50"',
      `datapath=${router}`,
    );
    /** The source a pod's packet to the external network leaves with, and where it leaves. */
    const leaving = async (pod: string, from: { ip: string; mac: string }) => {
      const trace = await dp.ovnTrace("ovn-default", ipv4Flow(pod, from, { ip: "172.56.0.50" }, gatewayMac));
      return (
        /ct_snat\w*\(ip4\.src=([\d.]+)\)\s*(?:\/\*[^*]*\*\/\s*)*\{\s*output\("([^"]+)"\)/
          .exec(trace)
          ?.slice(1) ?? trace
      );
    };
    t.same(await leaving("web.shop", web), [EIP, "localnet.external"], "the EIP's pod leaves with its EIP");
    t.same(
      await leaving("batch.shop", batch),
      [SNAT, "localnet.external"],
      "the SNAT pod leaves with its SNAT address",
    );

    // node-2 replaces node-1 as the gateway node: the port moves.
    await core.replaceNamespacedConfigMap({
      namespace: "kube-system",
      name: "ovn-external-gw-config",
      body: gatewayConfig("node-2"),
    });
    await waitFor(
      "the gateway port to move to node-2",
      async () => (await chassisOf(redirect)) === (await chassisUuid(node2)),
    );
    t.pass("the gateway port moves to the node that takes its place in external-gw-nodes");
  },
);
