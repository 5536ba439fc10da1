/**
 * `ovn-admission check` over the seed documents' own manifests
 * (test/fixtures/seeds), with the answers their users should get, mistakes
 * included; and what the command promises: apply order, workloads judged by
 * their template, exit codes, JSON, stdin, and no write to OVN Northbound.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { pino } from "pino";
import t from "tap";
import { OvsdbClient, op } from "ovsdb-client";
import { PortHandler } from "../../ovn/ports.js";
import { runCheck, type Finding } from "../../cli/check.js";
import { northboundFor, scratchDir } from "../harness/index.js";

const SEEDS = "test/fixtures/seeds";

async function check(args: string[], stdin = ""): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runCheck(
    args,
    {},
    (text) => (out += text),
    (text) => (err += text),
    () => stdin,
  );
  return { code, out, err };
}

const denials = (out: string) => out.split("\n").filter((l) => l.includes(": denied: "));

t.test(
  "seed 000: a plane no node declares is refused; with the annotated nodes, the pod is kept to them",
  async (t) => {
    const alone = await check(["-f", `${SEEDS}/000-encap-planes.yaml`]);
    t.equal(alone.code, 1);
    t.same(denials(alone.out), [
      `${SEEDS}/000-encap-planes.yaml:2 subnet/storage-subnet: denied: spec.nodeNetwork: no node declares plane "storage" in ovn.kubernetes.io/node_networks; no node declares any plane yet`,
      `${SEEDS}/000-encap-planes.yaml:12 subnet/storage-net: denied: spec.nodeNetwork: no node declares plane "storage" in ovn.kubernetes.io/node_networks; no node declares any plane yet`,
    ]);
    const annotated = await check([
      "-f",
      `${SEEDS}/000-encap-planes.yaml`,
      "--state",
      `${SEEDS}/000-cluster.yaml`,
      "--show-patches",
    ]);
    t.equal(annotated.code, 0, annotated.out);
    t.match(
      annotated.out,
      `${SEEDS}/000-encap-planes.yaml:24 pod/storage-namespace/storage-pod: patch: [{"op":"add","path":"/spec/affinity"`,
    );
    t.match(
      annotated.out,
      /planes\.ovn-admission\.io\/storage/,
      "the pod goes only to nodes of its subnet's plane",
    );
  },
);

t.test(
  "seed 001: cidr for cidrBlock and a namespace inside a NAD name are caught; the rest passes",
  async (t) => {
    const { code, out } = await check(["-f", `${SEEDS}/001-secondary-cni.yaml`]);
    t.equal(code, 1);
    t.same(denials(out), [
      `${SEEDS}/001-secondary-cni.yaml:24 subnet/subnet-secondary: denied: spec.cidr: did you mean "cidrBlock"? a Subnet has no field "cidr", and cidrBlock is not set`,
      `${SEEDS}/001-secondary-cni.yaml:46 pod/default/frontend: denied: metadata.annotations["k8s.v1.cni.cncf.io/networks"]: element 1: "name" must be a NetworkAttachmentDefinition name, found "default/public-network"; in the JSON form the namespace goes apart: {"name": "public-network", "namespace": "default"}`,
    ]);
    t.match(out, "check: 8 objects: 6 allowed, 2 denied, 0 not judged by any webhook");
  },
);

t.test("seed 003: the gateway ConfigMap and the EIP and SNAT pods pass", async (t) => {
  const { code, out } = await check(["-f", `${SEEDS}/003-eip-snat.yaml`]);
  t.equal(code, 0, out);
  t.match(out, "check: 3 objects: 3 allowed, 0 denied");
});

t.test("seed 004: the page's YAML does not parse; indented, its NAD's JSON does not either", async (t) => {
  const asWritten = await check(["-f", `${SEEDS}/004-multi-nic.yaml`]);
  t.equal(asWritten.code, 2, "unreadable input");
  t.match(asWritten.err, `${SEEDS}/004-multi-nic.yaml:11: YAML error: Missing closing 'quote`);
  const indented = await check(["-f", `${SEEDS}/004-multi-nic-indented.yaml`, "--show-patches"]);
  t.equal(indented.code, 1);
  t.same(denials(indented.out), [
    `${SEEDS}/004-multi-nic-indented.yaml:4 networkattachmentdefinition/default/gke-network-1: denied: spec.config: expected JSON, but it does not parse: Expected double-quoted property name in JSON at position 62`,
  ]);
  // The second gke-network-1 (no config: Multus reads a file of that name) carries the node selector the pod gets.
  t.match(
    indented.out,
    `${SEEDS}/004-multi-nic-indented.yaml:21 pod/default/samplepod: patch: [{"op":"add","path":"/spec/nodeSelector","value":{"my-label":"multinicNP"}}]`,
  );
});

t.test(
  "workloads are judged by their pod template, after the objects they need; stdin and JSON",
  async (t) => {
    const manifests = `
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: shop }
spec:
  template:
    metadata:
      annotations: { k8s.v1.cni.cncf.io/networks: "private/secret-net" }
    spec: { containers: [{ name: c, image: i }] }
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: secret-net, namespace: private }
spec: { config: '{"cniVersion": "0.3.1", "type": "macvlan", "master": "eth1"}' }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec: { ports: [{ port: 80 }] }
`;
    // An empty state: the cluster has nothing but what the files make.
    const { code, out } = await check(
      ["-f", "-", "-o", "json", "--state", scratchDir("oa-state-")],
      manifests,
    );
    t.equal(code, 1);
    const { findings } = JSON.parse(out) as { findings: Finding[] };
    t.same(
      findings.map((f) => `${f.line} ${f.object} ${f.verdict}`),
      [
        "11 networkattachmentdefinition/private/secret-net allowed",
        "16 service/shop/web skipped",
        "2 deployment/shop/web denied",
      ],
      "the NAD first, then the Service, then the workload",
    );
    t.match(
      findings[2]?.message,
      "pods of namespace shop may only use NetworkAttachmentDefinitions of their own namespace",
    );
    const alone = await check(["-f", "-"], manifests);
    t.match(alone.out, "check: no --kubeconfig or --state: what the files name but do not hold");
  },
);

t.test("unreadable input is exit 2 with the place; no -f is a usage error", async (t) => {
  const missing = await check(["-f", "/nonexistent/manifests.yaml"]);
  t.equal(missing.code, 2);
  t.match(missing.err, "/nonexistent/manifests.yaml: cannot read");
  const notAnObject = await check(["-f", "-"], "just a string\n");
  t.equal(notAnObject.code, 2);
  t.match(notAnObject.err, "<stdin>:1: not a Kubernetes object");
  const usage = await check([]);
  t.equal(usage.code, 2);
  t.match(usage.err, "-f is required");
  const badOption = await check(["-f", "-", "--network-model", "calico"], "");
  t.equal(badOption.code, 2);
  t.match(badOption.err, '--network-model: expected one of kube-ovn, ovn-kubernetes, found "calico"');
});

t.test("addresses: skipped without the Northbound; with it, checked read-only", async (t) => {
  const manifests = `
apiVersion: kubeovn.io/v1
kind: Subnet
metadata: { name: ovn-default }
spec: { cidrBlock: 10.16.0.0/16, gateway: 10.16.0.1, default: true }
---
apiVersion: v1
kind: Pod
metadata:
  name: db
  namespace: shop
  annotations: { ovn.kubernetes.io/ip_address: 10.16.0.5 }
spec: { nodeName: node-1, containers: [{ name: c, image: i }] }
`;
  const without = await check(["-f", "-"], manifests);
  t.equal(without.code, 0, without.out);
  t.match(
    without.out,
    "pod/shop/db: warning: port-claim for shop/db not checked: needs OVN Northbound (--nb-remote)",
  );

  const nb = await northboundFor(t);
  const rows = async () => {
    const client = new OvsdbClient({ remote: nb.unixRemote, database: "OVN_Northbound" });
    await client.connect({ timeoutMs: 5_000 });
    const [switches, ports] = await client.transact("OVN_Northbound", [
      op.select("Logical_Switch", [], ["name"]),
      op.select("Logical_Switch_Port", [], ["name"]),
    ]);
    client.close();
    return (switches?.rows?.length ?? 0) + (ports?.rows?.length ?? 0);
  };
  const free = await check(["-f", "-", "--nb-remote", nb.unixRemote, "--show-patches"], manifests);
  t.equal(free.code, 0, free.out + free.err);
  t.match(free.out, "pod/shop/db: warning: dryRun: 10.16.0.5 would be given; nothing is held");
  t.match(free.out, 'ovn.kubernetes.io~1mac_address","value":"0a:58:0a:10:00:05"', "and the MAC with it");
  t.equal(await rows(), 0, "nothing written to OVN Northbound");

  // Another pod holds the address (a claim made as the service makes it).
  const client = new OvsdbClient({ remote: nb.unixRemote, database: "OVN_Northbound" });
  t.teardown(() => client.close());
  await client.connect({ timeoutMs: 5_000 });
  const ports = new PortHandler(client, pino({ level: "silent" }));
  await ports.start();
  await ports.claim({
    pod: "shop/other",
    uid: "",
    port: "other.shop",
    subnet: "ovn-default",
    cidrs: ["10.16.0.0/16"],
    gateways: ["10.16.0.1"],
    exclude: [],
    ips: ["10.16.0.5"],
  });
  const before = await rows();
  const held = await check(["-f", "-", "--nb-remote", nb.unixRemote], manifests);
  t.equal(held.code, 1);
  t.match(
    held.out,
    'pod/shop/db: denied: metadata.annotations["ovn.kubernetes.io/ip_address"]: 10.16.0.5 is already held by pod shop/other in subnet ovn-default',
  );
  t.equal(await rows(), before, "still nothing written");
});

t.test("the command is the service's binary: ovn-admission check", async (t) => {
  const run = await promisify(execFile)(process.execPath, [
    "dist/bin/ovn-admission.js",
    "check",
    "-f",
    `${SEEDS}/003-eip-snat.yaml`,
  ]);
  t.match(run.stdout, "check: 3 objects: 3 allowed");
});

t.test("a Node the files declare is part of the view for the Subnet that names its plane", async (t) => {
  const bundle = `
apiVersion: kubeovn.io/v1
kind: Subnet
metadata: { name: storage-net }
spec: { cidrBlock: 10.200.0.0/16, gateway: 10.200.0.1, nodeNetwork: storage }
---
apiVersion: v1
kind: Node
metadata:
  name: node-1
  annotations: { ovn.kubernetes.io/node_networks: '{"storage": "10.10.10.10"}' }
`;
  const { code, out } = await check(["-f", "-"], bundle);
  t.equal(code, 0, out);
  t.same(denials(out), []);
});

t.test("every violation of an object, each on its own line, the first one first", async (t) => {
  const bundle = `
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  annotations:
    ovn.kubernetes.io/ingress_rate: fast
    ovn.kubernetes.io/egress_rate: "100001"
    ovn.kubernetes.io/eip: 172.56.0.233
    ovn.kubernetes.io/snat: 172.56.0.200
spec: { containers: [{ name: c, image: i }] }
`;
  const { code, out } = await check(["-f", "-", "-o", "json"], bundle);
  t.equal(code, 1, out);
  const [finding] = (JSON.parse(out) as { findings: Finding[] }).findings;
  t.same(finding?.violations, [
    'metadata.annotations["ovn.kubernetes.io/ingress_rate"]: expected a whole number of Mbit/s (e.g. "100"), found "fast"',
    'metadata.annotations["ovn.kubernetes.io/egress_rate"]: expected at most 100000 Mbit/s, found "100001"',
    'metadata.annotations["ovn.kubernetes.io/eip"] and metadata.annotations["ovn.kubernetes.io/snat"]: a pod has either an EIP (its own address, both directions) or an SNAT address (shared, outbound only), not both; found eip 172.56.0.233 and snat 172.56.0.200',
  ]);
  t.match(
    finding?.message,
    /^metadata\.annotations\["ovn\.kubernetes\.io\/ingress_rate"\]: .*; \(2\) .*; \(3\) /,
  );
  const text = await check(["-f", "-"], bundle);
  t.same(
    denials(text.out).map((l) => l.replace(/^<stdin>:\d+ pod\/shop\/web: denied: /, "")),
    finding?.violations,
    "text: one line a violation",
  );
});
