/**
 * Seed 003's EIP in seed 002's model, distributed: the NAT row names the
 * pod's port as that model names it (`<namespace>_<pod>`) with its MAC, so a
 * packet from the external network to the EIP reaches the pod.
 */
import t from "tap";
import type { DataplaneNode } from "../harness/dataplane.js";
import { SEED_GATEWAY } from "../fixtures/index.js";
import { waitFor } from "../harness/wait.js";
import { dataplaneCluster, ipv4Flow, ovnKubernetesPod, registerNodes } from "./cluster.js";
import { OVN_KUBERNETES } from "../fixtures/index.js";

const EIP = "172.56.0.233";

t.test("a distributed EIP reaches its <namespace>_<pod> port", async (t) => {
  const internalIp: Record<string, string> = { "node-1": "192.0.2.11", "node-2": "192.0.2.12" };
  const { dp, core, s } = await dataplaneCluster(t, internalIp, OVN_KUBERNETES);
  const node2 = dp.nodes[1] as DataplaneNode;
  await registerNodes(core, internalIp);
  await core.createNamespacedConfigMap({
    namespace: "kube-system",
    body: {
      metadata: { name: "ovn-external-gw-config", namespace: "kube-system" },
      data: { ...SEED_GATEWAY, type: "distributed", "external-gw-nodes": "node-1" },
    },
  });
  await waitFor("the view to hold the gateway and the nodes' subnets", () =>
    Boolean(s.service.view.gatewayConfig() && s.service.view.node("node-2")?.annotations.ovn_host_subnet),
  );
  await core.createNamespace({ body: { metadata: { name: "shop" } } });
  const { mac } = await ovnKubernetesPod(core, dp, node2, "shop", "web", { "ovn.kubernetes.io/eip": EIP });
  const fromOutside = { ip: "172.56.0.1", mac: "0a:00:00:00:00:01" };
  const inbound = await waitFor("the EIP to reach the pod", async () => {
    const outputs = await dp.outputs(
      "external",
      ipv4Flow("localnet.external", fromOutside, { ip: EIP }, SEED_GATEWAY["nic-mac"] as string),
    );
    return outputs.at(-1) === "shop_web" ? outputs : undefined;
  }).catch(() => undefined);
  t.equal(inbound?.at(-1), "shop_web", "a packet from the external network to the EIP reaches shop_web");
  // Distributed: the pod's own chassis answers ARP for the EIP with the pod's MAC, named by its port.
  const arp = await dp.ovnTrace(
    "external",
    `inport == "localnet.external" && eth.src == 0a:00:00:00:00:01 && eth.dst == ff:ff:ff:ff:ff:ff && arp.op == 1 && arp.sha == 0a:00:00:00:00:01 && arp.spa == 172.56.0.1 && arp.tha == 00:00:00:00:00:00 && arp.tpa == ${EIP}`,
  );
  t.match(
    arp,
    new RegExp(`eth\\.src = ${mac}[\\s\\S]*arp\\.op = 2`),
    "the EIP's ARP is answered with the pod's MAC: its NAT names shop_web",
  );
});
