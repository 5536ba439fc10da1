/**
 * Seed 000, network planes, by packets: pods of a `nodeNetwork` subnet on two
 * nodes leave on the tunnel from the sender's plane IP to the receiver's; a
 * plain pod's packet uses the nodes' default IPs; a node that loses the plane
 * stops offering that Encap. On OVN 25.03 (Debian trixie, laid out by
 * scripts/ovn-trixie.sh) every part is asserted; on bookworm's 23.03, which
 * chooses the remote end by the peer port's encap-ip but not the local one
 * (per-VIF local selection is OVN 24.03, ovn-encap-ip-default 24.09), what
 * it did is asserted where OVN says it works and reported otherwise.
 */
import t from "tap";
import type { V1Pod } from "@kubernetes/client-node";
import {
  BOOKWORM,
  CONVERGE_MS,
  trixieBuild,
  trixieRoot,
  type DataplaneNode,
  type OvnBuild,
} from "../harness/dataplane.js";
import { waitFor } from "../harness/wait.js";
import { dataplaneCluster, interfacesCarryEncapIps, ipv4Packet, registerNodes } from "./cluster.js";
import { STORAGE_SUBNET } from "../fixtures/index.js";

const NODES = { "node-1": "192.0.2.11", "node-2": "192.0.2.12" };
const STORAGE = { "node-1": "198.51.100.11", "node-2": "198.51.100.12" };

const root = trixieRoot();
const builds: OvnBuild[] = [BOOKWORM, ...(root ? [trixieBuild(root)] : [])];
if (!root)
  t.fail(
    "no Debian trixie root with OVN 25.03: scripts/setup.sh --for-tests lays it out (scripts/ovn-trixie.sh)",
  );

for (const build of builds) {
  t.test(`OVN ${build.version}: a plane pod's packet leaves on the plane's tunnel`, async (t) => {
    const { dp, kube, core, s } = await dataplaneCluster(t, NODES, [], { build, agentEncapIp: false });
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
    await kube.createSubnet("ovn-default", {
      cidrBlock: "10.16.0.0/24",
      gateway: "10.16.0.1",
      default: true,
    });
    await waitFor(
      "the view to hold both nodes' planes",
      () => s.service.view.nodesWithPlane("storage").length === 2,
    );
    await kube.createSubnet("storage-net", STORAGE_SUBNET);
    await waitFor("the view to hold the subnets", () => Boolean(s.service.view.subnet("storage-net")));
    for (const name of ["storage", "shop"]) await core.createNamespace({ body: { metadata: { name } } });
    const pod = (namespace: string, name: string, nodeName: string): V1Pod => ({
      metadata: { name, namespace },
      spec: { nodeName, containers: [{ name: "c", image: "i" }] },
    });
    const placed = async (namespace: string, name: string, node: DataplaneNode) => {
      const created = await core.createNamespacedPod({ namespace, body: pod(namespace, name, node.name) });
      const a = created.metadata?.annotations ?? {};
      await dp.plug(node, name, `${name}.${namespace}`);
      await dp.bound(`${name}.${namespace}`, node);
      return {
        ip: a["ovn.kubernetes.io/ip_address"] as string,
        mac: a["ovn.kubernetes.io/mac_address"] as string,
        encapIp: a["ovn-admission.io/encap-ip"],
      };
    };
    const s1 = await placed("storage", "s1", node1);
    const s2 = await placed("storage", "s2", node2);
    const p1 = await placed("shop", "p1", node1);
    const p2 = await placed("shop", "p2", node2);
    t.same(
      [s1.encapIp, s2.encapIp, p1.encapIp],
      [STORAGE["node-1"], STORAGE["node-2"], undefined],
      "plane pods record their node's plane IP",
    );
    await interfacesCarryEncapIps(dp, [
      [node1, "s1", STORAGE["node-1"]],
      [node2, "s2", STORAGE["node-2"]],
    ]);
    t.pass("their interfaces carry it (external_ids:encap-ip)");

    const tunnelFrom = (iface: string, from: { ip: string; mac: string }, to: { ip: string; mac: string }) =>
      waitFor(
        `${iface}'s flows to node-2`,
        () => dp.tunnelOf(node1, ipv4Packet(iface, from, to, to.mac)),
        CONVERGE_MS,
      );
    const storage = await tunnelFrom("s1", s1, s2);
    const plain = await tunnelFrom("p1", p1, p2);
    t.equal(storage.remoteIp, STORAGE["node-2"], "a plane pod's packet goes to the receiver's plane IP");
    if (build.version >= "24.03") {
      t.equal(storage.localIp, STORAGE["node-1"], "from the sender's plane IP");
      t.equal(plain.remoteIp, NODES["node-2"], "a plain pod's packet goes to the receiver's default IP");
      t.equal(plain.localIp ?? NODES["node-1"], NODES["node-1"], "from the sender's default IP");
    } else {
      t.comment(
        `OVN ${build.version}: plane pod from ${storage.localIp ?? "(no local_ip)"}; plain pod ${plain.localIp ?? "(no local_ip)"} -> ${plain.remoteIp}`,
      );
      t.notOk(storage.localIp, "OVN 23.03 does not choose the local end: the tunnel has no local_ip");
    }

    // node-2 gives up the plane once no pod uses it there: its chassis stops offering that Encap.
    await core.deleteNamespacedPod({ namespace: "storage", name: "s2", gracePeriodSeconds: 0 });
    await waitFor("the view to lose s2", () => !s.service.view.pod("storage", "s2"));
    const node = await core.readNode({ name: "node-2" });
    node.metadata!.annotations!["ovn.kubernetes.io/node_networks"] = "{}";
    await core.replaceNode({ name: "node-2", body: node });
    const encaps = () => dp.sbctl("--bare", "--columns=ip", "find", "Encap", `chassis_name=${node2.chassis}`);
    await waitFor(
      "node-2's storage Encap to go",
      async () => !(await encaps()).includes(STORAGE["node-2"]),
      CONVERGE_MS,
    );
    t.same(
      (await encaps()).split(/\s+/).filter(Boolean),
      [NODES["node-2"]],
      "node-2 offers its default IP only",
    );
  });
}
