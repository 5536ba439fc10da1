import jsonPatch from "fast-json-patch";
import t from "tap";
import { admissionRequest, settingsWith } from "../fixtures/index.js";
import { ClusterState } from "../../cluster/state.js";
import type { AdmissionRequest } from "../../webhooks/envelope.js";
import type { KubeObject } from "../../domain/kube.js";
import { mutateNode, validateNode } from "../../webhooks/nodes.js";
import { mutatePod, mutatePodBinding, validatePod } from "../../webhooks/pods.js";
import { readNodeNetworks } from "../../domain/planes.js";
import { subnetOfPod } from "../../domain/subnets.js";
import { validateSubnet } from "../../webhooks/subnets.js";

const settings = settingsWith({ maxRateMbps: 10_000 });
const NN = "ovn.kubernetes.io/node_networks";

const node = (
  name: string,
  networks?: Record<string, string> | string,
  extra: Partial<KubeObject> = {},
): KubeObject => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: {
    name,
    labels: { "kubernetes.io/hostname": name },
    annotations:
      networks === undefined
        ? {}
        : { [NN]: typeof networks === "string" ? networks : JSON.stringify(networks) },
  },
  status: { addresses: [{ type: "InternalIP", address: `192.168.1.${name.length}` }] },
  ...extra,
});
const subnet = (name: string, spec: Record<string, unknown>): KubeObject => ({
  apiVersion: "kubeovn.io/v1",
  kind: "Subnet",
  metadata: { name },
  spec,
});
const pod = (
  namespace: string,
  name: string,
  annotations: Record<string, string> = {},
  spec: Record<string, unknown> = {},
): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace, annotations },
  spec: { containers: [{ name: "app", image: "docker.io/library/nginx:alpine" }], ...spec },
  status: { phase: "Running" },
});

const request = (
  kind: string,
  resource: string,
  operation: "CREATE" | "UPDATE",
  object: KubeObject,
  oldObject: KubeObject | null = null,
  extra: Partial<AdmissionRequest> = {},
): AdmissionRequest =>
  admissionRequest(kind, resource, object, {
    group: resource === "subnets" ? "kubeovn.io" : "",
    operation,
    oldObject,
    ...extra,
  });

// The seed's example: two nodes with a storage plane, a storage subnet for storage-namespace.
const cluster = () =>
  ClusterState.of({
    Node: [
      node("node1", { storage: "10.10.10.10" }),
      node("node2", { storage: "10.10.10.11" }),
      node("node3"),
    ],
    Subnet: [
      subnet("ovn-default", { cidrBlock: "10.16.0.0/16", default: true }),
      subnet("storage-net", {
        cidrBlock: "10.200.0.0/16",
        gateway: "10.200.0.1",
        nodeNetwork: "storage",
        namespaces: ["storage-namespace"],
      }),
    ],
    Pod: [
      pod("storage-namespace", "storage-pod", {}, { nodeName: "node1" }),
      pod("default", "web", {}, { nodeName: "node1" }),
    ],
  });

t.test("node_networks: every problem names the plane and the value", async (t) => {
  t.same(readNodeNetworks('{"storage": "192.168.100.10", "app": "172.16.0.10"}').planes, {
    storage: "192.168.100.10",
    app: "172.16.0.10",
  });
  const cases: Array<[string, RegExp]> = [
    ["{storage:1}", /expected a JSON object of plane to encap IP, found invalid JSON/],
    ['["storage"]', /found an array/],
    ['{"Storage": "10.0.0.1"}', /plane "Storage": expected a DNS label/],
    ['{"storage": "10.0.0.300"}', /plane storage: expected one IPv4 or IPv6 address, found "10.0.0.300"/],
    ['{"storage": "10.0.0.0/24"}', /plane storage: expected one IPv4 or IPv6 address, found "10.0.0.0\/24"/],
    ['{"storage": 5}', /found 5/],
    [
      '{"a": "fd00::1", "b": "fd00:0:0::1"}',
      /plane b: address fd00:0:0::1 is already the encap IP of plane a on this node/,
    ],
  ];
  const view = cluster();
  for (const [value, message] of cases) {
    const verdict = validateNode(request("Node", "nodes", "CREATE", node("node4", value)), view, settings);
    t.match(
      verdict,
      {
        allowed: false,
        code: 400,
        message: new RegExp(
          `^metadata\\.annotations\\["ovn\\.kubernetes\\.io/node_networks"\\]: .*${message.source}`,
        ),
      },
      value,
    );
  }
});

t.test("an encap IP another node uses is denied with that node's name", async (t) => {
  const verdict = validateNode(
    request("Node", "nodes", "CREATE", node("node4", { storage: "10.10.10.11" })),
    cluster(),
    settings,
  );
  t.match(verdict, {
    allowed: false,
    code: 403,
    message: /plane storage: encap IP 10\.10\.10\.11 is already used by node node2$/,
  });
  const own = validateNode(
    request(
      "Node",
      "nodes",
      "UPDATE",
      node("node2", { storage: "10.10.10.11", app: "172.16.0.11" }),
      node("node2", { storage: "10.10.10.11" }),
    ),
    cluster(),
    settings,
  );
  t.equal(own.allowed, true, "a node keeping its own address is fine");
});

t.test("tunnel_interface: names fit 15 characters, expressions compile", async (t) => {
  const view = cluster();
  const withTunnel = (value: string) => {
    const n = node("node4");
    n.metadata!.annotations!["ovn.kubernetes.io/tunnel_interface"] = value;
    return validateNode(request("Node", "nodes", "CREATE", n), view, settings);
  };
  t.equal(withTunnel("eth1").allowed, true);
  t.equal(withTunnel("ens[a-z0-9]*,eth[a-z0-9]*").allowed, true, "the seed's example");
  t.equal(withTunnel("bond0.100").allowed, true);
  t.match(withTunnel("enp0s31f6-storage-1"), {
    allowed: false,
    message: /interface name "enp0s31f6-storage-1" is 19 characters; Linux allows 1 to 15/,
  });
  t.match(withTunnel("eth[0-9"), {
    allowed: false,
    message: /"eth\[0-9" is neither an interface name nor a regular expression that compiles/,
  });
  t.match(withTunnel("eth0,,eth1"), { allowed: false, message: /found an empty entry/ });
});

t.test("removing a plane that running pods on the node use is denied, naming them", async (t) => {
  const view = cluster();
  const verdict = validateNode(
    request("Node", "nodes", "UPDATE", node("node1", {}), node("node1", { storage: "10.10.10.10" })),
    view,
    settings,
  );
  t.match(verdict, {
    allowed: false,
    code: 403,
    message:
      /plane storage cannot be removed from node node1: running pods use it: storage-namespace\/storage-pod$/,
  });
  const fromNode2 = validateNode(
    request("Node", "nodes", "UPDATE", node("node2", {}), node("node2", { storage: "10.10.10.11" })),
    view,
    settings,
  );
  t.equal(fromNode2.allowed, true, "no pod of the plane runs on node2");
  view.apply("Pod", "MODIFIED", {
    ...pod("storage-namespace", "storage-pod", {}, { nodeName: "node1" }),
    status: { phase: "Succeeded" },
  });
  t.equal(
    validateNode(
      request("Node", "nodes", "UPDATE", node("node1", {}), node("node1", { storage: "10.10.10.10" })),
      view,
      settings,
    ).allowed,
    true,
    "finished pods do not hold the plane",
  );
});

t.test(
  "the node gets one label per plane, added and removed with the annotation; nothing is programmed from a review",
  async (t) => {
    const before = node("node1", { storage: "10.10.10.10" });
    before.metadata!.labels!["planes.ovn-admission.io/old"] = "true";
    const now = node("node1", { storage: "10.10.10.10", app: "172.16.0.10" });
    now.metadata!.labels!["planes.ovn-admission.io/old"] = "true";
    const verdict = mutateNode(request("Node", "nodes", "UPDATE", now, before));
    const patched = jsonPatch.applyPatch(structuredClone(now), verdict.patch, true).newDocument;
    t.same(patched.metadata?.labels, {
      "kubernetes.io/hostname": "node1",
      "planes.ovn-admission.io/storage": "true",
      "planes.ovn-admission.io/app": "true",
    });
    t.same(verdict.intents, [], "the mutating webhook programs nothing");
    const valid = validateNode(
      request("Node", "nodes", "UPDATE", now, before),
      ClusterState.of({ Node: [before] }),
      settings,
    );
    t.equal(valid.allowed, true);
    t.same(valid.intents, [], "validation programs nothing either: the stored Node is programmed");
    const unchanged = validateNode(
      request("Node", "nodes", "UPDATE", now, now),
      ClusterState.of({ Node: [now] }),
      settings,
    );
    t.same(unchanged.intents, [], "no change to the annotation, nothing to program");
    const denied = validateNode(
      request("Node", "nodes", "UPDATE", node("node1", {}), node("node1", { storage: "10.10.10.10" })),
      cluster(),
      settings,
    );
    t.same(denied.intents, [], "a denied change programs nothing");
    t.same(
      mutateNode(request("Node", "nodes", "CREATE", node("x", "{bad"))).patch,
      [],
      "a bad annotation leaves labels alone",
    );
  },
);

t.test("subnets: nodeNetwork only on overlay, on a plane some node has; partial planes warn", async (t) => {
  const view = cluster();
  const verdict = (spec: Record<string, unknown>) =>
    validateSubnet(request("Subnet", "subnets", "CREATE", subnet("s", spec)), view, settings);
  t.match(verdict({ cidrBlock: "10.9.0.0/16", nodeNetwork: "storage", vlan: "vlan10" }), {
    allowed: false,
    code: 403,
    message:
      /only overlay subnets can use a network plane, and this subnet is underlay \(spec\.vlan "vlan10"\)/,
  });
  t.match(verdict({ cidrBlock: "10.9.0.0/16", nodeNetwork: "fast" }), {
    allowed: false,
    message:
      'spec.nodeNetwork: no node declares plane "fast" in ovn.kubernetes.io/node_networks; planes that exist: storage',
  });
  t.match(verdict({ nodeNetwork: "Bad_Name" }), { allowed: false, code: 400 });
  t.match(verdict({ cidrBlock: "10.9.0.0/16", nodeNetwork: "storage" }), {
    allowed: true,
    warnings: [
      "plane storage is declared by 2 of 3 nodes: 1 lack it, and pods of this subnet will not be scheduled there",
    ],
  });
  t.match(verdict({ cidrBlock: "10.9.0.0/16" }), { allowed: true, warnings: [] });
  t.match(
    validateSubnet(
      request("Subnet", "subnets", "CREATE", subnet("s", { nodeNetwork: "x" })),
      ClusterState.of({}),
      settings,
    ),
    { message: /no node declares any plane yet/ },
  );
});

t.test("a pod's subnet: logical_switch, else its namespace's subnet, else the default", async (t) => {
  const view = cluster();
  t.equal(subnetOfPod("storage-namespace", {}, view, "ovn-default")?.name, "storage-net");
  t.equal(
    subnetOfPod(
      "storage-namespace",
      { "ovn.kubernetes.io/logical_switch": "ovn-default" },
      view,
      "ovn-default",
    )?.name,
    "ovn-default",
  );
  t.equal(subnetOfPod("web", {}, view, "ovn-default")?.name, "ovn-default");
});

t.test("a pod in a plane subnet gets required affinity merged into what it has", async (t) => {
  const view = cluster();
  const plain = request("Pod", "pods", "CREATE", pod("storage-namespace", "storage-pod"));
  const v1 = mutatePod(plain, view, settings);
  const p1 = jsonPatch.applyPatch(structuredClone(plain.object), v1.patch, true).newDocument as {
    spec: Record<string, unknown>;
  };
  t.same(p1.spec.affinity, {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: "planes.ovn-admission.io/storage", operator: "Exists" }] },
        ],
      },
    },
  });

  // Two existing terms (ORed): each must also require the plane; preferred affinity and pod affinity stay.
  const affinity = {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }] },
          { matchFields: [{ key: "metadata.name", operator: "In", values: ["node2"] }] },
        ],
      },
      preferredDuringSchedulingIgnoredDuringExecution: [
        { weight: 1, preference: { matchExpressions: [{ key: "ssd", operator: "Exists" }] } },
      ],
    },
    podAntiAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: [
        { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: { app: "db" } } },
      ],
    },
  };
  const rich = request("Pod", "pods", "CREATE", pod("storage-namespace", "db-0", {}, { affinity }));
  const v2 = mutatePod(rich, view, settings);
  const p2 = jsonPatch.applyPatch(structuredClone(rich.object), v2.patch, true).newDocument as {
    spec: { affinity: typeof affinity };
  };
  const plane = { key: "planes.ovn-admission.io/storage", operator: "Exists" };
  t.same(p2.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms, [
    { matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }, plane] },
    { matchFields: [{ key: "metadata.name", operator: "In", values: ["node2"] }], matchExpressions: [plane] },
  ]);
  t.same(p2.spec.affinity.podAntiAffinity, affinity.podAntiAffinity);
  t.same(
    p2.spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution,
    affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution,
  );
  const again = mutatePod({ ...rich, object: p2 as unknown as KubeObject }, view, settings);
  t.same(again.patch, [], "reinvoked, it adds nothing twice");

  t.same(
    mutatePod(request("Pod", "pods", "CREATE", pod("default", "web-1")), view, settings).patch,
    [],
    "pods without a plane are untouched",
  );
});

t.test(
  "spec.nodeName on a node without the plane is denied; on one with it the pod records its encap IP",
  async (t) => {
    const view = cluster();
    const onNode3 = request(
      "Pod",
      "pods",
      "CREATE",
      pod("storage-namespace", "p", {}, { nodeName: "node3" }),
    );
    t.match(validatePod(onNode3, view, settings), {
      allowed: false,
      code: 403,
      message:
        "spec.nodeName: node node3 does not declare plane storage, which subnet storage-net uses (spec.nodeNetwork); nodes that do: node1, node2",
    });
    const onNode2 = request(
      "Pod",
      "pods",
      "CREATE",
      pod("storage-namespace", "p", {}, { nodeName: "node2" }),
    );
    t.equal(validatePod(onNode2, view, settings).allowed, true);
    const mutated = mutatePod(onNode2, view, settings);
    const p = jsonPatch.applyPatch(structuredClone(onNode2.object), mutated.patch, true).newDocument;
    t.equal(p?.metadata?.annotations?.["ovn-admission.io/encap-ip"], "10.10.10.11");
    t.same(
      mutated.intents.map((i) => i.kind),
      ["port-claim"],
      "its address is claimed now; its interface is programmed from the stored pod",
    );
  },
);

t.test(
  "pods/binding: a node without the plane is refused; otherwise the Binding carries the encap IP",
  async (t) => {
    const view = cluster();
    view.apply("Pod", "ADDED", pod("storage-namespace", "pending-pod"));
    const binding = (target: string): AdmissionRequest =>
      request(
        "Binding",
        "pods",
        "CREATE",
        {
          apiVersion: "v1",
          kind: "Binding",
          metadata: { name: "pending-pod", namespace: "storage-namespace" },
          target: { apiVersion: "v1", kind: "Node", name: target },
        },
        null,
        { subResource: "binding" },
      );
    t.match(mutatePodBinding(binding("node3"), view, settings), {
      allowed: false,
      code: 403,
      message:
        /^target\.name: pod storage-namespace\/pending-pod cannot be bound: node node3 does not declare plane storage/,
    });
    const ok = mutatePodBinding(binding("node1"), view, settings);
    t.same(ok.patch, [
      { op: "add", path: "/metadata/annotations", value: { "ovn-admission.io/encap-ip": "10.10.10.10" } },
    ]);
    t.same(
      ok.intents.map((i) => i.kind),
      ["port-claim"],
      "its address is claimed at binding; its interface is programmed from the pod the API server stores",
    );
    const unknown = binding("node3");
    unknown.name = "not-in-view";
    t.equal(
      mutatePodBinding(unknown, view, settings).allowed,
      true,
      "a pod the view has not seen is judged on what we have",
    );
  },
);
