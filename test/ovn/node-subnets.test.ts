/** ovn-kubernetes node subnets against a real OVN_Northbound. */
import { pino } from "pino";
import t, { type Test } from "tap";
import { NodeSubnets } from "../../ovn/node-subnets.js";
import { SubnetSwitches } from "../../ovn/switches.js";
import { northboundClientFor, northboundFor, type OvsdbServer } from "../harness/index.js";

const log = pino({ level: "silent" });
const settings = { clusterIpSubnet: "192.168.0.0/22", nodeSubnetPrefix: 24 };

async function handlerOn(t: Test, nb: OvsdbServer): Promise<NodeSubnets> {
  const client = await northboundClientFor(t, nb.unixRemote);
  return new NodeSubnets(
    client,
    settings,
    new SubnetSwitches(client, { clusterRouter: "ovn-cluster" }, log),
    log,
  );
}

const subnetOf = async (h: NodeSubnets, node: string) =>
  (await h.claim({ node, uid: `uid-${node}` })).annotations?.ovn_host_subnet;

t.test(
  "blocks of --cluster-ip-subnet, one per node, kept; a full cluster subnet is a clear refusal",
  async (t) => {
    const nb = await northboundFor(t);
    const h = await handlerOn(t, nb);
    t.equal(await subnetOf(h, "kube-master"), "192.168.0.0/24");
    t.equal(await subnetOf(h, "kube-minion1"), "192.168.1.0/24");
    t.equal(await subnetOf(h, "kube-master"), "192.168.0.0/24", "a node keeps its subnet");
    t.equal(
      (await h.claim({ node: "dry", uid: "" }, true)).annotations?.ovn_host_subnet,
      "192.168.2.0/24",
      "dryRun answers",
    );
    t.equal(await subnetOf(h, "kube-minion2"), "192.168.2.0/24", "and held nothing");
    t.equal(await subnetOf(h, "kube-minion3"), "192.168.3.0/24");
    await t.rejects(h.claim({ node: "kube-minion4", uid: "" }), {
      name: "IntentRefused",
      message:
        "--cluster-ip-subnet 192.168.0.0/22 has no free /24 left for node kube-minion4 (4 node subnets, all given)",
    });
    const released = await h.releaseGone(new Set(["kube-master", "kube-minion1", "kube-minion2"]), 0);
    t.same(released, ["kube-minion3 192.168.3.0/24 /24"], "a node that is not stored loses its switch");
    t.equal(await subnetOf(h, "kube-minion4"), "192.168.3.0/24", "and its block is free again");
  },
);

t.test("nodes racing through two clients never share a subnet", async (t) => {
  const nb = await northboundFor(t);
  const [a, b] = [await handlerOn(t, nb), await handlerOn(t, nb)];
  const nodes = ["n0", "n1", "n2", "n3"];
  const subnets = await Promise.all(nodes.map((n, i) => subnetOf((i % 2 ? a : b) as NodeSubnets, n)));
  t.equal(new Set(subnets).size, 4, `distinct: ${subnets.join(" ")}`);
});
