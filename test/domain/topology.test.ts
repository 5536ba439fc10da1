/** ovn-kubernetes' names and addresses of the topology, from plain values. */
import t from "tap";
import {
  clusterRouterJoinIpOf,
  gatewayJoinIpOf,
  managementPortOf,
  topologyNames,
} from "../../domain/topology.js";
import { nodeTopologyOf } from "../../ovn/topology.js";
import { trim } from "../../domain/facts.js";

t.test(
  "a node's management port: the subnet's second address, its MAC derived as ovn-kubernetes does",
  async (t) => {
    t.same(managementPortOf("192.168.3.0/24"), {
      ip: "192.168.3.2",
      mac: "0a:58:c0:a8:03:02",
      cidr: "192.168.3.2/24",
    });
    t.equal(topologyNames.managementPort("node-1"), "k8s-node-1");
    t.equal(topologyNames.routerToSwitch("node-1"), "rtos-node-1");
    t.equal(topologyNames.gatewayRouter("node-1"), "GR_node-1");
  },
);

t.test(
  "join addresses: the cluster router's first, a gateway router's from its node subnet's place",
  async (t) => {
    t.equal(clusterRouterJoinIpOf("100.64.0.0/16"), "100.64.0.1");
    t.equal(gatewayJoinIpOf("192.168.0.0/24", "192.168.0.0/16", "100.64.0.0/16"), "100.64.0.2");
    t.equal(gatewayJoinIpOf("192.168.7.0/24", "192.168.0.0/16", "100.64.0.0/16"), "100.64.0.9");
    t.equal(gatewayJoinIpOf("192.168.7.0/24", "192.168.0.0/16", "100.64.0.0/30"), undefined, "no room");
  },
);

t.test(
  "a stored Node's rows: the MAC its agent names wins; pods reach its own IP through its management port",
  async (t) => {
    const node = (annotations: Record<string, string>, ip?: string) =>
      trim.Node({
        metadata: { name: "node-1", annotations },
        status: ip ? { addresses: [{ type: "InternalIP", address: ip }] } : {},
      });
    t.equal(nodeTopologyOf(node({})), undefined, "no subnet yet: nothing");
    t.same(nodeTopologyOf(node({ ovn_host_subnet: "192.168.1.0/24" }, "192.0.2.11")), {
      node: "node-1",
      switchName: "node-1",
      managementPort: "k8s-node-1",
      addresses: "0a:58:c0:a8:01:02 192.168.1.2",
      route: { ip_prefix: "192.0.2.11/32", nexthop: "192.168.1.2" },
    });
    t.equal(
      nodeTopologyOf(
        node({
          ovn_host_subnet: "192.168.1.0/24",
          "k8s.ovn.org/node-mgmt-port-mac-address": "fa:f1:27:f5:54:69",
        }),
      )?.addresses,
      "fa:f1:27:f5:54:69 192.168.1.2",
    );
  },
);
