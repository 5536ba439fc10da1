/**
 * Seed 000's planes in seed 002's model (--network-model ovn-kubernetes), by
 * packets: pods of a `nodeNetwork` subnet, on their nodes' switches, plugged
 * as that CNI plugs them (iface-id `<namespace>_<pod>`): their interfaces get
 * the plane's encap IP under that name, and on OVN ≥ 24.03 the packet from one
 * to the other leaves on the tunnel between the two nodes' plane IPs.
 */
import t from "tap";
import { op } from "ovsdb-client";
import { CONVERGE_MS, trixieBuild, trixieRoot, type DataplaneNode } from "../harness/dataplane.js";
import { waitFor } from "../harness/wait.js";
import { dataplaneCluster, interfacesCarryEncapIps, ipv4Packet, registerNodes } from "./cluster.js";
import { OVN_KUBERNETES, STORAGE_SUBNET } from "../fixtures/index.js";

const NB = "OVN_Northbound";
const NODES = { "node-1": "192.0.2.11", "node-2": "192.0.2.12" };
const STORAGE = { "node-1": "198.51.100.11", "node-2": "198.51.100.12" };

const root = trixieRoot();
if (!root)
  t.fail(
    "no Debian trixie root with OVN 25.03: scripts/setup.sh --for-tests lays it out (scripts/ovn-trixie.sh)",
  );
else
  t.test(
    "OVN 25.03, ovn-kubernetes model: plane pods' <namespace>_<pod> interfaces and tunnel",
    async (t) => {
      const build = trixieBuild(root);
      const { dp, kube, core, s } = await dataplaneCluster(t, NODES, OVN_KUBERNETES, {
        build,
        agentEncapIp: false,
      });
      const [node1, node2] = dp.nodes as [DataplaneNode, DataplaneNode];
      await registerNodes(
        core,
        NODES,
        Object.fromEntries(
          Object.entries(STORAGE).map(([name, ip]) => [
            name,
            { "ovn.kubernetes.io/node_networks": JSON.stringify({ storage: ip }) },
          ]),
        ),
      );
      const routerMac = await waitFor("node-1's switch on the cluster router", async () => {
        const [lrp] = await s.service.northbound.transact(NB, [
          op.select("Logical_Router_Port", [["name", "==", "rtos-node-1"]], ["mac"]),
        ]);
        return lrp?.rows?.[0]?.mac ? String(lrp.rows[0].mac) : undefined;
      });
      await kube.createSubnet("storage-net", STORAGE_SUBNET);
      await waitFor(
        "the view to hold the subnet and both nodes' planes",
        () =>
          Boolean(s.service.view.subnet("storage-net")) &&
          s.service.view.nodesWithPlane("storage").length === 2,
      );
      await core.createNamespace({ body: { metadata: { name: "storage" } } });
      const placed = async (name: string, node: DataplaneNode) => {
        const pod = await core.createNamespacedPod({
          namespace: "storage",
          body: {
            metadata: { name },
            spec: { nodeName: node.name, containers: [{ name: "c", image: "i" }] },
          },
        });
        const a = pod.metadata?.annotations ?? {};
        const ovn = JSON.parse(a.ovn ?? "{}") as { ip_address?: string; mac_address?: string };
        const addressed = { ip: (ovn.ip_address ?? "").split("/")[0] as string, mac: ovn.mac_address ?? "" };
        await dp.plug(node, name, `storage_${name}`, {
          attached_mac: addressed.mac,
          ip_address: addressed.ip,
        });
        await dp.bound(`storage_${name}`, node);
        return { ...addressed, encapIp: a["ovn-admission.io/encap-ip"] };
      };
      const s1 = await placed("s1", node1);
      const s2 = await placed("s2", node2);
      t.same(
        [s1.encapIp, s2.encapIp],
        [STORAGE["node-1"], STORAGE["node-2"]],
        "plane pods record their node's plane IP",
      );
      await interfacesCarryEncapIps(dp, [
        [node1, "s1", STORAGE["node-1"]],
        [node2, "s2", STORAGE["node-2"]],
      ]);
      t.pass("their <namespace>_<pod> interfaces carry it (external_ids:encap-ip)");
      const tunnel = await waitFor(
        "s1's flows to node-2",
        () => dp.tunnelOf(node1, ipv4Packet("s1", s1, s2, routerMac)),
        CONVERGE_MS,
      );
      t.equal(tunnel.remoteIp, STORAGE["node-2"], "the packet goes to the receiver's plane IP");
      t.equal(tunnel.localIp, STORAGE["node-1"], "from the sender's plane IP");
    },
  );
