import t from "tap";
import { trim } from "../../domain/facts.js";
import { ClusterState } from "../../cluster/state.js";
import { parseNodeNetworks } from "../../domain/planes.js";
import type { KubeObject } from "../../domain/kube.js";

const node = (name: string, networks?: Record<string, string>, ip = "192.168.0.1"): KubeObject => ({
  kind: "Node",
  metadata: {
    name,
    annotations: networks ? { "ovn.kubernetes.io/node_networks": JSON.stringify(networks) } : {},
  },
  status: {
    addresses: [
      { type: "InternalIP", address: ip },
      { type: "Hostname", address: name },
    ],
  },
});
const pod = (ns: string, name: string, annotations: Record<string, string>, nodeName = ""): KubeObject => ({
  kind: "Pod",
  metadata: { name, namespace: ns, annotations },
  spec: { nodeName, containers: [{ name: "c", image: "i" }] },
  status: { phase: "Running" },
});
const subnet = (name: string, spec: Record<string, unknown>): KubeObject => ({
  kind: "Subnet",
  metadata: { name },
  spec,
});
const nad = (ns: string, name: string, config: unknown): KubeObject => ({
  kind: "NetworkAttachmentDefinition",
  metadata: { name, namespace: ns },
  spec: { config: typeof config === "string" ? config : JSON.stringify(config) },
});

t.test("node planes: plane -> nodes, encap IP -> node, kept right on update and delete", async (t) => {
  const view = ClusterState.of({
    Node: [
      node("n1", { storage: "10.10.10.1", app: "10.20.0.1" }),
      node("n2", { storage: "10.10.10.2" }),
      node("n3"),
    ],
  });
  t.same(view.planes(), ["app", "storage"]);
  t.same(view.nodesWithPlane("storage").sort(), ["n1", "n2"]);
  t.same(view.nodesWithEncapIp("10.20.0.1"), ["n1"]);
  t.same(view.planesOf("n1"), { storage: "10.10.10.1", app: "10.20.0.1" });
  t.equal(view.node("n1")?.internalIP, "192.168.0.1");

  view.apply("Node", "MODIFIED", node("n1", { storage: "10.10.10.9" }));
  t.same(view.planes(), ["storage"], "a removed plane leaves the index");
  t.same(view.nodesWithEncapIp("10.20.0.1"), []);
  t.same(view.nodesWithEncapIp("10.10.10.9"), ["n1"]);
  view.apply("Node", "DELETED", node("n2"));
  t.same(view.nodesWithPlane("storage"), ["n1"]);
  t.same(parseNodeNetworks("{not json"), {}, "malformed annotation reads as no planes");
  t.same(parseNodeNetworks('["storage"]'), {});
});

t.test("pods: EIP, SNAT, static IPs (all forms) and node, kept right on update and delete", async (t) => {
  const networks = JSON.stringify([
    { name: "storage-net", namespace: "shop", interface: "net1", ips: ["172.17.0.5/24"] },
    { name: "other", ips: ["10.1.0.7"] },
  ]);
  const view = ClusterState.of({
    Pod: [
      pod(
        "shop",
        "web-0",
        { "ovn.kubernetes.io/eip": "172.56.0.10", "ovn.kubernetes.io/ip_address": "10.16.0.5" },
        "n1",
      ),
      pod(
        "shop",
        "web-1",
        { "ovn.kubernetes.io/snat": "172.56.0.20", "k8s.v1.cni.cncf.io/networks": networks },
        "n1",
      ),
      pod(
        "shop",
        "web-2",
        {
          "ovn.kubernetes.io/snat": "172.56.0.20",
          "storage-net.shop.ovn.ovn.kubernetes.io/ip_address": "172.17.0.9",
        },
        "n2",
      ),
    ],
  });
  t.same(
    view.podsWithEip("172.56.0.10").map((p) => p.key),
    ["shop/web-0"],
  );
  t.same(
    view
      .podsWithSnat("172.56.0.20")
      .map((p) => p.key)
      .sort(),
    ["shop/web-1", "shop/web-2"],
  );
  t.same(
    view.podsWithStaticIp("10.16.0.5").map((p) => p.key),
    ["shop/web-0"],
  );
  t.same(
    view.podsWithStaticIp("172.17.0.5").map((p) => p.key),
    ["shop/web-1"],
    "attachment ips, prefix stripped",
  );
  t.same(
    view.podsWithStaticIp("10.1.0.7").map((p) => p.key),
    ["shop/web-1"],
  );
  t.same(
    view.podsWithStaticIp("172.17.0.9").map((p) => p.key),
    ["shop/web-2"],
    "provider form of ip_address",
  );
  t.same(
    view
      .podsOnNode("n1")
      .map((p) => p.name)
      .sort(),
    ["web-0", "web-1"],
  );

  view.apply("Pod", "MODIFIED", pod("shop", "web-0", { "ovn.kubernetes.io/eip": "172.56.0.11" }, "n1"));
  t.same(view.podsWithEip("172.56.0.10"), [], "old EIP released");
  t.same(
    view.podsWithEip("172.56.0.11").map((p) => p.key),
    ["shop/web-0"],
  );
  t.same(view.podsWithStaticIp("10.16.0.5"), []);
  view.apply("Pod", "DELETED", pod("shop", "web-1", {}));
  t.same(
    view.podsWithSnat("172.56.0.20").map((p) => p.key),
    ["shop/web-2"],
  );
  t.same(view.podsWithStaticIp("172.17.0.5"), []);
});

t.test("a pod keeps only what the rules read", async (t) => {
  const facts = trim.Pod({
    kind: "Pod",
    metadata: {
      name: "web-0",
      namespace: "shop",
      resourceVersion: "42",
      deletionTimestamp: new Date(0),
      labels: { app: "web" },
      annotations: {
        "kubectl.kubernetes.io/last-applied-configuration": "x".repeat(5000),
        "ovn.kubernetes.io/eip": "172.56.0.10",
        "storage-net.shop.ovn.ovn.kubernetes.io/ip_address": "172.17.0.9",
        "k8s.v1.cni.cncf.io/networks": "shop/storage-net",
        ovn: '{"ip_address":"10.244.1.5/24"}',
      },
    },
    spec: { nodeName: "n1", containers: [{ name: "c", image: "i", env: [{ name: "A", value: "B" }] }] },
    status: { phase: "Running", conditions: [] },
  });
  t.same(facts, {
    key: "shop/web-0",
    name: "web-0",
    namespace: "shop",
    uid: "",
    resourceVersion: "42",
    nodeName: "n1",
    phase: "Running",
    terminating: true,
    annotations: {
      "ovn.kubernetes.io/eip": "172.56.0.10",
      "storage-net.shop.ovn.ovn.kubernetes.io/ip_address": "172.17.0.9",
      "k8s.v1.cni.cncf.io/networks": "shop/storage-net",
      ovn: '{"ip_address":"10.244.1.5/24"}',
    },
  });
});

t.test("subnets by name and namespace, NADs by name and provider, the gateway ConfigMap", async (t) => {
  const view = ClusterState.of({
    Subnet: [
      subnet("ovn-default", { cidrBlock: "10.16.0.0/16", default: true }),
      subnet("storage", { cidrBlock: "10.66.0.0/16", nodeNetwork: "storage", namespaces: ["shop", "db"] }),
      subnet("attach", { cidrBlock: "172.17.0.0/16", provider: "storage-net.shop.ovn" }),
    ],
    NetworkAttachmentDefinition: [
      nad("shop", "storage-net", {
        cniVersion: "0.3.1",
        type: "kube-ovn",
        server_socket: "/run/openvswitch/kube-ovn-daemon.sock",
        provider: "storage-net.shop.ovn",
      }),
      nad("shop", "chain", {
        cniVersion: "0.3.1",
        plugins: [{ type: "kube-ovn", provider: "chain.shop.ovn" }, { type: "portmap" }],
      }),
      nad("shop", "broken", "{not json"),
    ],
    ConfigMap: [
      {
        kind: "ConfigMap",
        metadata: { name: "ovn-external-gw-config", namespace: "kube-system" },
        data: { "enable-external-gw": "true" },
      },
    ],
  });
  t.equal(view.subnet("storage")?.nodeNetwork, "storage");
  t.same(
    view.subnetsOfNamespace("shop").map((s) => s.name),
    ["storage"],
  );
  t.same(view.subnetsOfNamespace("web"), []);
  t.equal(view.subnet("ovn-default")?.isDefault, true);
  t.equal(view.nad("shop", "storage-net")?.provider, "storage-net.shop.ovn");
  t.same(
    view.nadsWithProvider("chain.shop.ovn").map((n) => n.name),
    ["chain"],
    "provider inside a plugins chain",
  );
  t.equal(view.nad("shop", "broken")?.provider, undefined);
  t.same(view.gatewayConfig()?.data, { "enable-external-gw": "true" });

  view.replace("Subnet", [
    subnet("storage", { cidrBlock: "10.66.0.0/16", nodeNetwork: "storage", namespaces: ["db"] }),
  ]);
  t.same(
    view.subnets().map((s) => s.name),
    ["storage"],
    "a relist drops what is gone",
  );
  t.same(view.subnetsOfNamespace("shop"), [], "and its index entries");
  t.match(view.sizes(), { Subnet: 1, NetworkAttachmentDefinition: 3, ConfigMap: 1, Pod: 0 });
});

t.test("synced only when every awaited kind has been listed", async (t) => {
  const view = new ClusterState(["Node", "Pod"]);
  t.equal(view.synced, false);
  view.replace("Node", []);
  t.same(view.waitingFor(), ["Pod"]);
  view.replace("Pod", []);
  t.equal(view.synced, true);
});
