import jsonPatch from "fast-json-patch";
import t from "tap";
import { ClusterState } from "../../cluster/state.js";
import { parseNetworks, parseNodeSelector } from "../../domain/attachments.js";
import type { AdmissionRequest } from "../../webhooks/envelope.js";
import type { KubeObject } from "../../domain/kube.js";
import { validateNad } from "../../webhooks/nads.js";
import { mutatePod, validatePod } from "../../webhooks/pods.js";
import { admissionRequest, settingsWith } from "../fixtures/index.js";

const NETWORKS = "k8s.v1.cni.cncf.io/networks";
const SELECTOR = "k8s.v1.cni.cncf.io/nodeSelector";
const settings = settingsWith({ sharedAttachmentNamespaces: ["net-shared"] });

const nad = (
  namespace: string,
  name: string,
  config: unknown,
  annotations: Record<string, string> = {},
): KubeObject => ({
  apiVersion: "k8s.cni.cncf.io/v1",
  kind: "NetworkAttachmentDefinition",
  metadata: { name, namespace, annotations },
  spec: { config: typeof config === "string" ? config : JSON.stringify(config) },
});
// The seeds' own NADs: Kube-OVN as a secondary CNI (001), and ipvlan with whereabouts (004).
const kubeOvnNad = nad("default", "kube-ovn-vpc-network", {
  cniVersion: "0.3.0",
  type: "kube-ovn",
  server_socket: "/run/openvswitch/kube-ovn-daemon.sock",
  provider: "kube-ovn-vpc-network.default.ovn",
});
const ipvlanNad = nad("default", "gke-network-1", {
  cniVersion: "0.3.0",
  type: "ipvlan",
  master: "ens224",
  mode: "l2",
  ipam: { type: "whereabouts", range: "172.16.0.0/24" },
});

const request = (kind: string, resource: string, object: KubeObject, group = ""): AdmissionRequest =>
  admissionRequest(kind, resource, object, { group });
const nadRequest = (o: KubeObject) =>
  request("NetworkAttachmentDefinition", "network-attachment-definitions", o, "k8s.cni.cncf.io");
const pod = (
  namespace: string,
  annotations: Record<string, string>,
  spec: Record<string, unknown> = {},
): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "samplepod", namespace, annotations },
  spec: { containers: [{ name: "app", image: "docker.io/library/nginx:alpine" }], ...spec },
});

t.test("networks: a text read again is the same frozen result, per namespace", async (t) => {
  const first = parseNetworks("storage-net@net1", "shop");
  t.equal(parseNetworks("storage-net@net1", "shop"), first, "the pods of a Deployment share one parse");
  t.same(parseNetworks("storage-net@net1", "billing"), {
    ok: true,
    value: [{ namespace: "billing", name: "storage-net", interface: "net1" }],
  });
  t.ok(Object.isFrozen(first) && first.ok && Object.isFrozen(first.value) && Object.isFrozen(first.value[0]));
  const json = parseNetworks('[{"name": "a", "ips": ["10.0.0.5/24"]}]', "shop");
  t.ok(json.ok && Object.isFrozen(json.value[0]?.ips), "lists inside an attachment too");
  t.throws(() => {
    (first.ok ? (first.value[0] as { name: string }) : { name: "" }).name = "changed";
  }, TypeError);
  const broken = parseNetworks("a/b/c", "shop");
  t.equal(parseNetworks("a/b/c", "shop"), broken, "an error is kept too");
  const long = Array.from({ length: 400 }, (_, i) => `shop/net-${i}`).join(",");
  t.ok(long.length > 4096);
  const once = parseNetworks(long, "shop");
  t.not(parseNetworks(long, "shop"), once, "a text over 4 KiB is parsed each time, never kept");
  t.same(parseNetworks(long, "shop"), once);
  t.ok(Object.isFrozen(once));
});

t.test("networks: both forms parse; errors name the entry and what was expected", async (t) => {
  t.same(parseNetworks("default/gke-network-1,gke-network-2@net9", "shop"), {
    ok: true,
    value: [
      { namespace: "default", name: "gke-network-1" },
      { namespace: "shop", name: "gke-network-2", interface: "net9" },
    ],
  });
  t.same(
    parseNetworks(
      '[{"name": "attachnet", "namespace": "default", "interface": "net1", "ips": ["10.100.0.100/16"], "mac": "0a:00:00:00:00:01", "default-route": ["10.100.0.1"]}]',
      "shop",
    ),
    {
      ok: true,
      value: [
        {
          namespace: "default",
          name: "attachnet",
          interface: "net1",
          ips: ["10.100.0.100/16"],
          mac: "0a:00:00:00:00:01",
          defaultRoute: ["10.100.0.1"],
        },
      ],
    },
  );
  const errors: Array<[string, RegExp]> = [
    ["a/b/c", /^entry 1 \("a\/b\/c"\): expected \[namespace\/\]name\[@interface\]$/],
    ["good, Bad_Name", /^entry 2 \("Bad_Name"\): "Bad_Name" is not a NetworkAttachmentDefinition name$/],
    [
      '[{"name": "x"}, {"nme": "y"}]',
      /^element 2: "name" must be a NetworkAttachmentDefinition name, found undefined$/,
    ],
    ['[{"name": "x", "ips": "10.0.0.1"}]', /^element 1: "ips" must be a list of strings, found "10.0.0.1"$/],
    ['[{"name": "x"', /^expected a JSON list of attachments, but the JSON does not parse: .*position/],
  ];
  for (const [text, message] of errors)
    t.match(parseNetworks(text, "shop"), { ok: false, error: message }, text);
  t.same(parseNodeSelector("disktype=ssd, example.com/zone=a"), {
    ok: true,
    value: { disktype: "ssd", "example.com/zone": "a" },
  });
  t.match(parseNodeSelector("disktype"), { ok: false, error: 'pair 1 ("disktype"): expected key=value' });
  t.match(parseNodeSelector("bad key=x"), { ok: false, error: /pair 1: label key "bad key"/ });
  t.match(parseNodeSelector("a=b,a=c"), {
    ok: false,
    error: "pair 2: key a is given twice with different values",
  });
});

t.test(
  "NADs: config, allow-list, kube-ovn provider and socket, ipvlan/macvlan, IPAM, node selector",
  async (t) => {
    const view = ClusterState.of({});
    t.equal(validateNad(nadRequest(kubeOvnNad), view, settings).allowed, true, "seed 001's NAD");
    t.equal(validateNad(nadRequest(ipvlanNad), view, settings).allowed, true, "seed 004's NAD");
    const chain = nad("default", "chain", {
      cniVersion: "0.4.0",
      plugins: [
        {
          type: "bridge",
          bridge: "br1",
          ipam: {
            type: "host-local",
            ranges: [[{ subnet: "10.10.0.0/16", gateway: "10.10.0.1" }]],
            routes: [{ dst: "0.0.0.0/0" }],
          },
        },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    });
    t.equal(validateNad(nadRequest(chain), view, settings).allowed, true, "a plugins chain");
    const cases: Array<[string, KubeObject, number, string | RegExp]> = [
      [
        "not JSON",
        nad("default", "x", "{type: ipvlan"),
        400,
        /^spec\.config: expected JSON, but it does not parse/,
      ],
      [
        "plugin not allowed",
        nad("default", "x", { type: "sriov" }),
        403,
        'spec.config.type: plugin "sriov" is not allowed here; allowed: kube-ovn, ipvlan, macvlan, bridge, portmap, sbr, tuning, host-local, static, whereabouts',
      ],
      [
        "chained plugin not allowed",
        nad("default", "x", { plugins: [{ type: "bridge" }, { type: "bandwidth" }] }),
        403,
        /^spec\.config\.plugins\[1\]\.type: plugin "bandwidth" is not allowed here/,
      ],
      [
        "IPAM not allowed",
        nad("default", "x", { type: "macvlan", master: "eth1", ipam: { type: "dhcp" } }),
        403,
        /^spec\.config\.ipam\.type: IPAM plugin "dhcp" is not allowed here/,
      ],
      [
        "wrong provider",
        nad("default", "kube-ovn-vpc-network", {
          type: "kube-ovn",
          server_socket: "/run/openvswitch/kube-ovn-daemon.sock",
          provider: "kube-ovn-vpc-network.kube-system.ovn",
        }),
        400,
        'spec.config.provider: expected "kube-ovn-vpc-network.default.ovn" (<nad-name>.<nad-namespace>.ovn), found "kube-ovn-vpc-network.kube-system.ovn"',
      ],
      [
        "relative socket",
        nad("default", "n", {
          type: "kube-ovn",
          server_socket: "kube-ovn-daemon.sock",
          provider: "n.default.ovn",
        }),
        400,
        /^spec\.config\.server_socket: expected an absolute path/,
      ],
      [
        "ipvlan without master",
        nad("default", "x", { type: "ipvlan", mode: "l2" }),
        400,
        /^spec\.config\.master: ipvlan needs the node interface to attach to, found undefined$/,
      ],
      [
        "macvlan bad mode",
        nad("default", "x", { type: "macvlan", master: "eth1", mode: "l2" }),
        400,
        'spec.config.mode: macvlan modes are bridge, private, vepa, passthru, found "l2"',
      ],
      [
        "master too long",
        nad("default", "x", { type: "ipvlan", master: "enp0s31f6-storage0" }),
        400,
        /^spec\.config\.master: interface name "enp0s31f6-storage0" is 18 characters/,
      ],
      [
        "range not a CIDR",
        nad("default", "x", {
          type: "ipvlan",
          master: "ens224",
          ipam: { type: "whereabouts", range: "172.16.0.0" },
        }),
        400,
        /^spec\.config\.ipam\.range: expected a network in CIDR notation/,
      ],
      [
        "gateway outside",
        nad("default", "x", {
          type: "bridge",
          ipam: { type: "host-local", subnet: "10.1.0.0/24", gateway: "10.2.0.1" },
        }),
        400,
        'spec.config.ipam.subnet: gateway "10.2.0.1" must be an address inside 10.1.0.0/24',
      ],
      [
        "route dst",
        nad("default", "x", {
          type: "bridge",
          ipam: { type: "host-local", subnet: "10.1.0.0/24", routes: [{ dst: "default" }] },
        }),
        400,
        /^spec\.config\.ipam\.routes\[0\]\.dst: expected a network in CIDR notation, found "default"$/,
      ],
      [
        "bad node selector",
        nad("default", "x", { type: "bridge" }, { [SELECTOR]: "disktype:ssd" }),
        400,
        /^metadata\.annotations\["k8s\.v1\.cni\.cncf\.io\/nodeSelector"\]: pair 1 \("disktype:ssd"\): expected key=value$/,
      ],
    ];
    for (const [what, object, code, message] of cases) {
      t.match(validateNad(nadRequest(object), view, settings), { allowed: false, code, message }, what);
    }
  },
);

const attachmentsView = () =>
  ClusterState.of({
    NetworkAttachmentDefinition: [
      kubeOvnNad,
      ipvlanNad,
      nad(
        "shop",
        "storage-net",
        {
          type: "kube-ovn",
          server_socket: "/run/openvswitch/kube-ovn-daemon.sock",
          provider: "storage-net.shop.ovn",
        },
        { [SELECTOR]: "network.example.com/storage=true" },
      ),
      nad(
        "shop",
        "fast-net",
        { type: "macvlan", master: "eth2" },
        { [SELECTOR]: "network.example.com/storage=false" },
      ),
      nad("net-shared", "uplink", { type: "macvlan", master: "eth3" }, { [SELECTOR]: "zone=a" }),
    ],
    Subnet: [
      {
        metadata: { name: "storage-attach" },
        spec: { cidrBlock: "10.100.0.0/16", provider: "storage-net.shop.ovn" },
      },
    ],
    Pod: [
      {
        metadata: {
          name: "holder",
          namespace: "shop",
          annotations: { [NETWORKS]: '[{"name": "storage-net", "ips": ["10.100.0.100/16"]}]' },
        },
        spec: {},
      },
    ],
    Namespace: [
      { metadata: { name: "shop" } },
      { metadata: { name: "default" } },
      { metadata: { name: "net-shared" } },
    ],
  });

t.test(
  "pods: attachments exist, stay in their namespace, have sane interfaces, addresses and MACs",
  async (t) => {
    const view = attachmentsView();
    const verdict = (ns: string, networks: string) =>
      validatePod(request("Pod", "pods", pod(ns, { [NETWORKS]: networks })), view, settings);
    t.equal(
      verdict("default", "default/gke-network-1,kube-ovn-vpc-network").allowed,
      true,
      "seed 004's samplepod",
    );
    t.equal(verdict("shop", "net-shared/uplink").allowed, true, "a shared namespace's NAD");
    const cases: Array<[string, string, string, number, string | RegExp]> = [
      [
        "missing",
        "shop",
        "shop/nope",
        403,
        'metadata.annotations["k8s.v1.cni.cncf.io/networks"]: attachment 1 (shop/nope): NetworkAttachmentDefinition shop/nope does not exist',
      ],
      [
        "another namespace",
        "shop",
        "default/gke-network-1",
        403,
        /attachment 1 \(default\/gke-network-1\): pods of namespace shop may only use NetworkAttachmentDefinitions of their own namespace or of net-shared \(or of a namespace labelled ovn-admission\.io\/shared-attachments=true\)$/,
      ],
      [
        "eth0",
        "shop",
        "storage-net@eth0",
        403,
        /attachment 1 \(shop\/storage-net\): interface eth0 is the pod's primary interface/,
      ],
      [
        "duplicate interface",
        "shop",
        "storage-net@net1,fast-net@net1",
        403,
        /attachment 2 \(shop\/fast-net\): interface net1 is already used by attachment 1$/,
      ],
      [
        "long interface",
        "shop",
        "storage-net@storage-interface-1",
        400,
        /interface name "storage-interface-1" is 19 characters/,
      ],
      [
        "bad ip",
        "shop",
        '[{"name": "storage-net", "ips": ["10.100.0.300"]}]',
        400,
        /ips: "10\.100\.0\.300" is not an IP address$/,
      ],
      [
        "ip outside the subnet",
        "shop",
        '[{"name": "storage-net", "ips": ["10.200.0.5/16"]}]',
        403,
        /ips: 10\.200\.0\.5 is outside subnet storage-attach \(10\.100\.0\.0\/16\)$/,
      ],
      [
        "ip held",
        "shop",
        '[{"name": "storage-net", "ips": ["10.100.0.100"]}]',
        403,
        /ips: 10\.100\.0\.100 is already held by pod shop\/holder$/,
      ],
      [
        "multicast mac",
        "shop",
        '[{"name": "storage-net", "mac": "01:00:5e:00:00:01"}]',
        400,
        /mac: expected a unicast MAC address/,
      ],
      [
        "parse error",
        "shop",
        "shop/",
        400,
        /entry 1 \("shop\/"\): expected \[namespace\/\]name\[@interface\]/,
      ],
    ];
    for (const [what, ns, networks, code, message] of cases)
      t.match(verdict(ns, networks), { allowed: false, code, message }, what);
    const none = validatePod(
      request("Pod", "pods", pod("shop", { [NETWORKS]: "shop/nope" })),
      ClusterState.of({}),
      settings,
    );
    t.equal(none.allowed, true, "with no NADs in the view (no cluster), existence is not judged");
  },
);

t.test("pods: NAD node selectors merge into spec.nodeSelector; a clash is denied naming both", async (t) => {
  const view = attachmentsView();
  const one = request(
    "Pod",
    "pods",
    pod(
      "shop",
      { [NETWORKS]: "storage-net,net-shared/uplink" },
      { nodeSelector: { "kubernetes.io/os": "linux" } },
    ),
  );
  const merged = mutatePod(one, view, settings);
  const patched = jsonPatch.applyPatch(structuredClone(one.object), merged.patch, true).newDocument as {
    spec: { nodeSelector: Record<string, string> };
  };
  t.same(patched.spec.nodeSelector, {
    "kubernetes.io/os": "linux",
    "network.example.com/storage": "true",
    zone: "a",
  });
  t.match(
    mutatePod(request("Pod", "pods", pod("shop", { [NETWORKS]: "storage-net,fast-net" })), view, settings),
    {
      allowed: false,
      message:
        'spec.nodeSelector: network.example.com/storage: NetworkAttachmentDefinition shop/storage-net asks for "true" and NetworkAttachmentDefinition shop/fast-net for "false"; no node can satisfy both',
    },
  );
  t.match(
    mutatePod(
      request(
        "Pod",
        "pods",
        pod("shop", { [NETWORKS]: "net-shared/uplink" }, { nodeSelector: { zone: "b" } }),
      ),
      view,
      settings,
    ),
    {
      allowed: false,
      message:
        'spec.nodeSelector: zone: the pod\'s spec.nodeSelector asks for "b" and NetworkAttachmentDefinition net-shared/uplink for "a"; no node can satisfy both',
    },
  );
});

t.test("NADs: whereabouts ranges on one master may not overlap; deleting a NAD in use warns", async (t) => {
  const view = ClusterState.of({
    NetworkAttachmentDefinition: [ipvlanNad],
    Pod: [
      {
        metadata: { name: "samplepod", namespace: "default", annotations: { [NETWORKS]: "gke-network-1" } },
        spec: {},
        status: { phase: "Running" },
      },
      {
        metadata: { name: "done", namespace: "default", annotations: { [NETWORKS]: "gke-network-1" } },
        spec: {},
        status: { phase: "Succeeded" },
      },
    ],
  });
  const overlapping = nad("shop", "gke-network-2", {
    type: "ipvlan",
    master: "ens224",
    ipam: { type: "whereabouts", range: "172.16.0.128/25" },
  });
  t.match(validateNad(nadRequest(overlapping), view, settings), {
    allowed: false,
    code: 403,
    message:
      "spec.config.ipam.range: 172.16.0.128/25 on master ens224 overlaps 172.16.0.0/24 of NetworkAttachmentDefinition default/gke-network-1 on the same master",
  });
  const elsewhere = nad("shop", "gke-network-3", {
    type: "ipvlan",
    master: "ens256",
    ipam: { type: "whereabouts", range: "172.16.0.0/24" },
  });
  t.equal(
    validateNad(nadRequest(elsewhere), view, settings).allowed,
    true,
    "another master may reuse the range",
  );
  const disjoint = nad("shop", "gke-network-4", {
    type: "ipvlan",
    master: "ens224",
    ipam: { type: "whereabouts", range: "172.16.1.0/24" },
  });
  t.equal(validateNad(nadRequest(disjoint), view, settings).allowed, true);

  const deletion = {
    ...nadRequest(ipvlanNad),
    operation: "DELETE" as const,
    object: null,
    oldObject: ipvlanNad,
  };
  t.match(validateNad(deletion, view, settings), {
    allowed: true,
    warnings: [
      "NetworkAttachmentDefinition default/gke-network-1 is used by running pods: default/samplepod",
    ],
  });
});

t.test(
  "a namespace's default attachments go to pods that name none, with their node selectors",
  async (t) => {
    const view = ClusterState.of({
      NetworkAttachmentDefinition: [
        nad(
          "shop",
          "storage-net",
          { type: "macvlan", master: "eth2" },
          { [SELECTOR]: "network.example.com/storage=true" },
        ),
      ],
      Namespace: [
        {
          metadata: {
            name: "shop",
            annotations: { "ovn-admission.io/default-networks": "storage-net@net1" },
          },
        },
      ],
    });
    const plain = request("Pod", "pods", pod("shop", {}));
    const verdict = mutatePod(plain, view, settings);
    const patched = jsonPatch.applyPatch(structuredClone(plain.object), verdict.patch, true)
      .newDocument as KubeObject & { spec: { nodeSelector?: Record<string, string> } };
    t.equal(patched.metadata?.annotations?.[NETWORKS], "storage-net@net1");
    t.same(patched.spec.nodeSelector, { "network.example.com/storage": "true" });
    const own = request("Pod", "pods", pod("shop", { [NETWORKS]: "" }));
    t.same(mutatePod(own, view, settings).patch, [], "a pod with its own (even empty) annotation keeps it");
  },
);

t.test(
  "pods: static addresses fall back to the NAD's IPAM range; a MAC is unique on its network",
  async (t) => {
    const view = ClusterState.of({
      NetworkAttachmentDefinition: [
        ipvlanNad,
        nad("default", "other-net", { type: "macvlan", master: "eth9" }),
      ],
      Pod: [
        {
          metadata: {
            name: "first",
            namespace: "default",
            annotations: { [NETWORKS]: '[{"name": "gke-network-1", "mac": "0A:58:AC:10:00:05"}]' },
          },
          spec: {},
        },
      ],
    });
    const verdict = (networks: string) =>
      validatePod(request("Pod", "pods", pod("default", { [NETWORKS]: networks })), view, settings);
    t.match(verdict('[{"name": "gke-network-1", "ips": ["172.17.0.9"]}]'), {
      allowed: false,
      message:
        /ips: 172\.17\.0\.9 is outside the IPAM range of NetworkAttachmentDefinition default\/gke-network-1 \(172\.16\.0\.0\/24\)$/,
    });
    t.equal(verdict('[{"name": "gke-network-1", "ips": ["172.16.0.9"]}]').allowed, true);
    t.match(verdict('[{"name": "gke-network-1", "mac": "0a:58:ac:10:00:05"}]'), {
      allowed: false,
      message: /mac: 0a:58:ac:10:00:05 is already used on this network by pod default\/first$/,
    });
    t.equal(
      verdict('[{"name": "other-net", "mac": "0a:58:ac:10:00:05"}]').allowed,
      true,
      "another network may reuse it",
    );
  },
);
