/** A Node's gateway declaration (seed 002's gateway-init), judged on plain objects. */
import t from "tap";
import { ClusterState } from "../../cluster/state.js";
import { readNodeGateway } from "../../domain/topology.js";
import { validateNode } from "../../webhooks/nodes.js";
import { admissionRequest, settingsWith } from "../fixtures/index.js";

const GATEWAY = "ovn-admission.io/gateway";
const good = { "physical-interface": "eth1", "physical-ip": "10.33.74.138/24", "default-gw": "10.33.74.253" };
const node = (name: string, declared: unknown, ip?: string) => ({
  metadata: {
    name,
    annotations: { [GATEWAY]: typeof declared === "string" ? declared : JSON.stringify(declared) },
  },
  ...(ip ? { status: { addresses: [{ type: "InternalIP", address: ip }] } } : {}),
});

t.test("a declaration as seed 002's gateway-init takes it reads back", async (t) => {
  t.same(readNodeGateway(JSON.stringify(good)), {
    gateway: { physicalInterface: "eth1", physicalIp: "10.33.74.138/24", defaultGateway: "10.33.74.253" },
    problems: [],
  });
});

t.test("each problem names its key, what was expected and what was found", async (t) => {
  const problems = (declared: unknown) =>
    readNodeGateway(typeof declared === "string" ? declared : JSON.stringify(declared)).problems;
  t.same(problems({ ...good, "default-gw": "10.99.0.1" }), [
    "default-gw: 10.99.0.1 is not in physical-ip's network 10.33.74.0/24",
  ]);
  t.same(problems({ ...good, "default-gw": "10.33.74.138" }), [
    "default-gw: 10.33.74.138 is the physical IP itself",
  ]);
  t.same(problems({ ...good, "physical-ip": "10.33.74.138" }), [
    'physical-ip: expected an IPv4 address with its prefix length (e.g. 10.33.74.138/24), found "10.33.74.138"',
  ]);
  t.same(problems({ ...good, "physical-ip": "10.33.74.0/24" }), [
    "physical-ip: 10.33.74.0/24 is its network's own address, not a host's",
  ]);
  t.match(
    problems({ ...good, "physical-interface": "eth/1" })[0],
    /^physical-interface: interface name "eth\/1"/,
  );
  t.same(problems({ ...good, "default-gateway": "x" }), [
    'unknown key "default-gateway" (expected physical-interface, physical-ip, default-gw)',
  ]);
  t.same(problems({ "physical-ip": "10.33.74.138/24" }), [
    "physical-interface: expected a string, found null",
    "default-gw: expected a string, found null",
  ]);
  t.match(problems("eth1 10.33.74.138/24")[0], /^expected JSON, found "eth1 10\.33\.74\.138\/24"/);
});

t.test("the Node is refused with every problem, and when its physical IP is another node's", async (t) => {
  const settings = settingsWith({ networkModel: "ovn-kubernetes" });
  const view = ClusterState.of({
    Node: [
      node("gw-1", good),
      {
        metadata: { name: "worker" },
        status: { addresses: [{ type: "InternalIP", address: "10.33.74.140" }] },
      },
    ],
  });
  const refused = validateNode(
    admissionRequest("Node", "nodes", node("gw-2", { ...good, "default-gw": "10.99.0.1" })),
    view,
    settings,
  );
  t.equal(refused.allowed, false);
  t.match(
    refused.message,
    /metadata\.annotations\["ovn-admission\.io\/gateway"\]: default-gw: 10\.99\.0\.1 is not in/,
  );
  t.match(
    validateNode(admissionRequest("Node", "nodes", node("gw-2", good)), view, settings).message,
    /physical-ip 10\.33\.74\.138 is already node gw-1's gateway address/,
  );
  t.match(
    validateNode(
      admissionRequest("Node", "nodes", node("gw-2", { ...good, "physical-ip": "10.33.74.140/24" })),
      view,
      settings,
    ).message,
    /physical-ip 10\.33\.74\.140 is node worker's InternalIP/,
  );
  t.equal(
    validateNode(admissionRequest("Node", "nodes", node("gw-1", good)), view, settings).allowed,
    true,
    "a node keeps its own declaration",
  );
});
