import t from "tap";
import { ClusterState } from "../../cluster/state.js";
import type { AdmissionRequest } from "../../webhooks/envelope.js";
import { validateConfigMap } from "../../webhooks/configmaps.js";
import { externalAddressProblem, readGatewayConfig } from "../../domain/gateway-config.js";
import { natWantOf } from "../../domain/nat.js";
import { SEED_GATEWAY, settingsWith } from "../fixtures/index.js";

function configMapRequest(
  data: Record<string, string>,
  name = "ovn-external-gw-config",
  namespace = "kube-system",
): AdmissionRequest {
  return {
    uid: "u-1",
    kind: { group: "", version: "v1", kind: "ConfigMap" },
    resource: { group: "", version: "v1", resource: "configmaps" },
    subResource: "",
    name,
    namespace,
    operation: "CREATE",
    userInfo: {},
    object: { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace }, data },
    oldObject: null,
    dryRun: false,
  } as unknown as AdmissionRequest;
}

const settings = settingsWith();
const nodes = ClusterState.of({ Node: [{ metadata: { name: "kube-ovn-worker" } }] });

t.test("the seed's ConfigMap is read as written, centralized by default", async (t) => {
  const reading = readGatewayConfig(SEED_GATEWAY);
  t.same(reading, {
    enabled: true,
    problems: [],
    warnings: [],
    config: {
      mode: "centralized",
      nodes: ["kube-ovn-worker"],
      nic: "eth1",
      address: "172.56.0.1/16",
      nicIp: "172.56.0.254/16",
      nicMac: "16:52:f3:13:6a:25",
    },
  });
  const verdict = validateConfigMap(configMapRequest(SEED_GATEWAY), nodes, settings);
  t.equal(verdict.allowed, true);
  t.same(verdict.warnings, []);
  t.ok(reading.enabled && reading.config, "the seed's ConfigMap reads as an enabled gateway");
  t.same(verdict.intents, [], "programmed from the stored ConfigMap, never from the request");
});

t.test("every bad value is refused with its key, what was expected and what was found", async (t) => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ "enable-external-gw": "yes" }, `data["enable-external-gw"]: expected "true" or "false", found "yes"`],
    [
      { type: "centrailized" },
      `data["type"]: did you mean "centralized"? expected "centralized" or "distributed", found "centrailized"`,
    ],
    [{ type: "ha" }, `data["type"]: expected "centralized" or "distributed", found "ha"`],
    [
      { "external-gw-nodes": "" },
      `data["external-gw-nodes"]: centralized mode needs the gateway nodes' names, comma-separated; found ""`,
    ],
    [
      { "external-gw-nodes": "Node_1" },
      `data["external-gw-nodes"]: "Node_1" is not a node name (a DNS subdomain)`,
    ],
    [
      { "external-gw-nic": "eth1/2" },
      `data["external-gw-nic"]: interface name "eth1/2" is not valid on Linux (no '/', ':', whitespace, "." or "..")`,
    ],
    [
      { "external-gw-nic": "a-very-long-nic-name" },
      `data["external-gw-nic"]: interface name "a-very-long-nic-name" is 20 characters; Linux allows 1 to 15`,
    ],
    [
      { "external-gw-addr": "172.56.0.1" },
      `data["external-gw-addr"]: expected the physical gateway's address and prefix (e.g. "172.56.0.1/16"), found "172.56.0.1"`,
    ],
    [
      { "nic-ip": "10.0.0.254/16" },
      `data["nic-ip"]: expected an address of 172.56.0.0/16 (the network of external-gw-addr) with the same prefix, found "10.0.0.254/16": 10.0.0.254 is outside the external network 172.56.0.0/16`,
    ],
    [
      { "nic-ip": "172.56.0.1/16" },
      `data["nic-ip"]: expected an address of 172.56.0.0/16 (the network of external-gw-addr) with the same prefix, found "172.56.0.1/16": 172.56.0.1 is the physical gateway's address (external-gw-addr)`,
    ],
    [
      { "nic-ip": "172.56.0.254/24" },
      `data["nic-ip"]: expected an address of 172.56.0.0/16 (the network of external-gw-addr) with the same prefix, found "172.56.0.254/24"`,
    ],
    [
      { "nic-ip": "172.56.255.255/16" },
      `data["nic-ip"]: expected an address of 172.56.0.0/16 (the network of external-gw-addr) with the same prefix, found "172.56.255.255/16": 172.56.255.255 is the broadcast address of 172.56.0.0/16`,
    ],
    [
      { "nic-mac": "17:52:f3:13:6a:25" },
      `data["nic-mac"]: expected a unicast MAC address (e.g. "16:52:f3:13:6a:25"), found "17:52:f3:13:6a:25"`,
    ],
    [
      { "nic-mac": "" },
      `data["nic-mac"]: expected a unicast MAC address (e.g. "16:52:f3:13:6a:25"), found ""`,
    ],
  ];
  for (const [change, message] of cases) {
    const verdict = validateConfigMap(configMapRequest({ ...SEED_GATEWAY, ...change }), nodes, settings);
    t.equal(verdict.allowed, false, JSON.stringify(change));
    t.equal(verdict.code, 400);
    t.equal(verdict.message, `ConfigMap kube-system/ovn-external-gw-config: ${message}`);
    t.same(verdict.intents, [], "nothing is programmed from a refused ConfigMap");
  }
  const many = validateConfigMap(
    configMapRequest({ ...SEED_GATEWAY, type: "centrailized", "nic-mac": "x" }),
    nodes,
    settings,
  );
  t.match(many.message, /data\["type"\].*; data\["nic-mac"\]/, "all problems at once, each with its key");
});

t.test("disabled, the rest is not checked; unknown keys and unknown nodes are warned", async (t) => {
  const off = validateConfigMap(
    configMapRequest({ "enable-external-gw": "false", "nic-mac": "nonsense" }),
    nodes,
    settings,
  );
  t.equal(off.allowed, true);
  t.same(off.intents, []);
  const typo = validateConfigMap(
    configMapRequest({ ...SEED_GATEWAY, "external-gw-nodes": "kube-ovn-worker,worker-9", "nic-macc": "x" }),
    nodes,
    settings,
  );
  t.equal(typo.allowed, true);
  t.same(typo.warnings, [
    `data["nic-macc"]: not a key of the external gateway; did you mean "nic-mac"?`,
    `data["external-gw-nodes"]: no node named worker-9 (yet); the gateway is programmed without it until it joins`,
  ]);
});

t.test("other ConfigMaps are not ours", async (t) => {
  for (const [name, namespace] of [
    ["ovn-external-gw-config", "default"],
    ["coredns", "kube-system"],
  ] as const) {
    const verdict = validateConfigMap(
      configMapRequest({ type: "centrailized" }, name, namespace),
      nodes,
      settings,
    );
    t.same(verdict, { allowed: true, patch: [], warnings: [], intents: [] }, `${namespace}/${name}`);
  }
});

t.test("external addresses: inside the network, not its network, broadcast, gateway or nic-ip", async (t) => {
  const problem = (ip: string) => externalAddressProblem(ip, "172.56.0.1/16", "172.56.0.254/16");
  t.equal(problem("172.56.0.233"), undefined);
  t.equal(problem("172.57.0.1"), "172.57.0.1 is outside the external network 172.56.0.0/16");
  t.equal(problem("172.56.0.0"), "172.56.0.0 is the network address of 172.56.0.0/16");
  t.equal(problem("172.56.255.255"), "172.56.255.255 is the broadcast address of 172.56.0.0/16");
  t.equal(problem("172.56.0.1"), "172.56.0.1 is the physical gateway's address (external-gw-addr)");
  t.equal(problem("172.56.0.254"), "172.56.0.254 is the gateway router port's address (nic-ip)");
  t.equal(problem("fd00::5"), "fd00::5 is outside the external network 172.56.0.0/16");
  t.equal(
    externalAddressProblem("fd00:0::1", "fd00::1/64", undefined),
    "fd00:0::1 is the physical gateway's address (external-gw-addr)",
    "IPv6 compared in any spelling",
  );
});

t.test("the NAT row a pod asks for", async (t) => {
  const ip = { "ovn.kubernetes.io/ip_address": "10.16.0.9,fd00:10:16::9" };
  t.same(
    natWantOf("shop", "web", { "ovn.kubernetes.io/eip": "172.56.0.233", ...ip }, "centralized", "kube-ovn"),
    {
      pod: "shop/web",
      holds: { type: "dnat_and_snat", external_ip: "172.56.0.233" },
      row: { type: "dnat_and_snat", external_ip: "172.56.0.233", logical_ip: "10.16.0.9" },
    },
  );
  t.same(
    natWantOf("shop", "web", { "ovn.kubernetes.io/snat": "172.56.0.200", ...ip }, "distributed", "kube-ovn"),
    {
      pod: "shop/web",
      holds: { type: "snat", external_ip: "172.56.0.200" },
      row: { type: "snat", external_ip: "172.56.0.200", logical_ip: "10.16.0.9" },
    },
  );
  t.same(
    natWantOf(
      "shop",
      "web",
      {
        "ovn.kubernetes.io/eip": "172.56.0.233",
        "ovn.kubernetes.io/mac_address": "0A:58:0A:10:00:09",
        ...ip,
      },
      "distributed",
      "kube-ovn",
    ),
    {
      pod: "shop/web",
      holds: { type: "dnat_and_snat", external_ip: "172.56.0.233" },
      row: {
        type: "dnat_and_snat",
        external_ip: "172.56.0.233",
        logical_ip: "10.16.0.9",
        logical_port: "web.shop",
        external_mac: "0a:58:0a:10:00:09",
      },
    },
    "distributed: the pod's port and MAC",
  );
  t.equal(
    natWantOf(
      "shop",
      "web",
      {
        "ovn.kubernetes.io/eip": "172.56.0.233",
        "ovn.kubernetes.io/mac_address": "0a:58:0a:10:00:09",
        ...ip,
      },
      "distributed",
      "ovn-kubernetes",
    ).row?.logical_port,
    "shop_web",
    "ovn-kubernetes model: the port is <namespace>_<pod>",
  );
  t.same(
    natWantOf("shop", "web", { "ovn.kubernetes.io/eip": "fd00:56::0:9", ...ip }, "centralized", "kube-ovn")
      .row,
    { type: "dnat_and_snat", external_ip: "fd00:56::9", logical_ip: "fd00:10:16::9" },
    "the pod address of the EIP's family",
  );
  t.same(
    natWantOf("shop", "web", { "ovn.kubernetes.io/eip": "172.56.0.233" }, "centralized", "kube-ovn"),
    { pod: "shop/web", holds: { type: "dnat_and_snat", external_ip: "172.56.0.233" } },
    "no IP yet: held, no row",
  );
  t.same(
    natWantOf("shop", "web", { "ovn.kubernetes.io/eip": "172.56.0.233", ...ip }, "distributed", "kube-ovn"),
    { pod: "shop/web", holds: { type: "dnat_and_snat", external_ip: "172.56.0.233" } },
    "distributed, no MAC yet: held, no row",
  );
});
