/**
 * The latency users feel: from a pod's create (as kubectl sends it) to its
 * logical switch port bound and `up` on its node's chassis, through a real
 * kube-apiserver, the service, the real ovn-northd and, on two simulated
 * nodes, ovn-controller and ovs-vswitchd (dummy datapath). Pods are created
 * at a fixed rate and plugged as a CNI plugs them once their create returns
 * (the interface with iface-id `<pod>.<namespace>`, written straight to the
 * node's database). Printed, never asserted:
 *
 *   dataplane-bench: <n> pods at <r>/s: create->up p50 <ms> p99 <ms> (create answered p50 <ms> p99 <ms>), <k> not up
 *
 * Anchors: ovn-kubernetes measured 300 ms per port write before parallelising
 * pod handlers (its PR #2367); Kube-OVN took 343 to 405 s for 1000 pods in a
 * published IPAM comparison (Spiderpool's IPAM performance page).
 *
 *   npm run bench:dataplane -- [--rate 50] [--seconds 30]
 */
import { parseArgs } from "node:util";
import { CoreV1Api } from "@kubernetes/client-node";
import { indexBy, namedUuid, op, OvsdbClient, type Row } from "ovsdb-client";
import { scratchDir, startNorthbound } from "ovsdb-sandbox";
import { startDataplane } from "../test/harness/dataplane.js";
import { startKube } from "../test/harness/kube.js";
import { startServiceProcess } from "./service-process.js";

const { values } = parseArgs({
  options: { rate: { type: "string", default: "50" }, seconds: { type: "string", default: "30" } },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const NB = "OVN_Northbound";
const NODES: Record<string, string> = { "node-1": "192.0.2.11", "node-2": "192.0.2.12" };

const log = (line: string) => console.error(`dataplane-bench: ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (sorted: number[], q: number) =>
  sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number) : NaN;

async function main(): Promise<void> {
  const dir = scratchDir("oa-dataplane-");
  const kube = await startKube();
  const nb = await startNorthbound({ tcp: false });
  const admin = new OvsdbClient({ remote: nb.unixRemote, database: NB });
  await admin.connect({ timeoutMs: 10_000 });
  await admin.transact(NB, [op.insert("Logical_Router", { name: "ovn-cluster" })]);
  const dp = await startDataplane(nb, Object.keys(NODES));
  for (const node of dp.nodes)
    await dp.vsctl(node, "set", "Open_vSwitch", ".", `external_ids:ovn-encap-ip=${NODES[node.name]}`);

  const service = await startServiceProcess(dir, kube, [
    "--nb-remote",
    nb.unixRemote,
    "--node-ovsdb-override",
    dp.nodes.map((n) => `${n.name}=${n.ovs.unixRemote}`).join(";"),
    "--lease-namespace",
    "default",
  ]);
  const core = kube.kubeConfig.makeApiClient(CoreV1Api);
  for (const [name, address] of Object.entries(NODES))
    await core.createNode({
      body: { metadata: { name }, status: { addresses: [{ type: "InternalIP", address }] } },
    });
  await core.createNamespace({ body: { metadata: { name: "bench" } } });
  // A /16: room for every pod of the run.
  await kube.createSubnet("ovn-default", { cidrBlock: "10.16.0.0/16", gateway: "10.16.0.1", default: true });
  await sleep(2_000); // the webhook configurations and the subnet reach their watchers

  // When each port goes up on its chassis, from a Southbound monitor.
  const southbound = new OvsdbClient({ remote: dp.southbound.unixRemote, database: "OVN_Southbound" });
  await southbound.connect({ timeoutMs: 10_000 });
  const bindings = await southbound.cache("OVN_Southbound", {
    Port_Binding: {
      columns: ["logical_port", "chassis", "up"],
      indexes: { port: indexBy.column("logical_port") },
    },
  });
  const upAt = new Map<string, number>();
  const seen = (_table: string, row: Row) => {
    const name = String(row.logical_port);
    if (row.up === true && row.chassis !== null && !upAt.has(name)) upAt.set(name, performance.now());
  };
  bindings.on("insert", seen);
  bindings.on("update", seen);

  const nodeClients = await Promise.all(
    dp.nodes.map(async (node) => {
      const client = new OvsdbClient({ remote: node.ovs.unixRemote, database: "Open_vSwitch" });
      await client.connect({ timeoutMs: 10_000 });
      return client;
    }),
  );
  /** What a CNI's ADD does on the node: an interface on br-int named for the pod's port. */
  const plug = (nodeIndex: number, iface: string, portName: string) =>
    (nodeClients[nodeIndex] as OvsdbClient).transact("Open_vSwitch", [
      op.insert("Interface", { name: iface, external_ids: { "iface-id": portName } }, { uuidName: "i" }),
      op.insert("Port", { name: iface, interfaces: [namedUuid("i")] }, { uuidName: "p" }),
      op.mutate("Bridge", [["name", "==", "br-int"]], [["ports", "insert", [namedUuid("p")]]]),
    ]);

  const total = Math.round(rate * seconds);
  log(`${total} pods at ${rate}/s on ${dp.nodes.length} nodes (OVN ${dp.build.version}); files in ${dir}`);
  const createdAt = new Map<string, number>();
  const answered: number[] = [];
  const failures: string[] = [];
  const started = performance.now();
  const work: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const name = `p${i}`;
    const portName = `${name}.bench`;
    const nodeIndex = i % dp.nodes.length;
    work.push(
      (async () => {
        const t0 = performance.now();
        createdAt.set(portName, t0);
        await core.createNamespacedPod({
          namespace: "bench",
          body: {
            metadata: { name },
            spec: {
              nodeName: (dp.nodes[nodeIndex] as { name: string }).name,
              containers: [{ name: "c", image: "i" }],
            },
          },
        });
        answered.push(performance.now() - t0);
        await plug(nodeIndex, `veth${i}`, portName);
      })().catch((err: Error) => {
        if (failures.length < 5) failures.push(`${name}: ${err.message}`);
      }),
    );
  }
  await Promise.all(work);
  const deadline = performance.now() + 30_000;
  while (upAt.size < total - failures.length && performance.now() < deadline) await sleep(200);

  const latencies = [...createdAt]
    .flatMap(([port, t0]) => (upAt.has(port) ? [(upAt.get(port) as number) - t0] : []))
    .sort((a, b) => a - b);
  const created = answered.sort((a, b) => a - b);
  const ms = (v: number) => `${Math.round(v)} ms`;
  if (failures.length) log(`failed creates (first ${failures.length}): ${failures.join("; ")}`);
  console.log(
    `dataplane-bench: ${total} pods at ${rate}/s: create->up p50 ${ms(quantile(latencies, 0.5))} p99 ${ms(quantile(latencies, 0.99))} (create answered p50 ${ms(quantile(created, 0.5))} p99 ${ms(quantile(created, 0.99))}), ${total - latencies.length} not up`,
  );

  southbound.close();
  for (const client of nodeClients) client.close();
  admin.close();
  await service.stop();
  await dp.stop();
  await nb.stop();
  await kube.stop();
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`dataplane-bench: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
