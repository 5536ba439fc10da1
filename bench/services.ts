/**
 * Services as load balancers, at 1k and 10k endpoints in all: the time from
 * an EndpointSlice change (an endpoint no longer ready, as the endpoint slice
 * controller writes it) to the Service's load balancer holding its new
 * backends, through a real kube-apiserver, the service (its own process, the
 * ovn-kubernetes model) and a real OVN_Northbound. Beside it, in the same run,
 * the cost of one bare transaction that writes the same row (the load
 * balancer's VIPs) straight to the Northbound. Printed, never asserted:
 *
 *   services-bench: <n> endpoints (<s> Services): slice change -> backends p50 <ms> p99 <ms>; bare transaction p50 <ms> p99 <ms>
 *
 *   npm run bench:services -- [--changes 100] [--per-service 50]
 */
import { parseArgs } from "node:util";
import type { KubernetesObject } from "@kubernetes/client-node";
import { indexBy, op, OvsdbClient, type Row } from "ovsdb-client";
import { scratchDir, startNorthbound } from "ovsdb-sandbox";
import { startKube } from "../test/harness/kube.js";
import { startServiceProcess } from "./service-process.js";

const { values } = parseArgs({
  options: { changes: { type: "string", default: "100" }, "per-service": { type: "string", default: "50" } },
});
const CHANGES = Number(values.changes);
const PER_SERVICE = Number(values["per-service"]);
const SIZES = [1_000, 10_000];
const NB = "OVN_Northbound";

const log = (line: string) => console.error(`services-bench: ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (sorted: number[], q: number) =>
  sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number) : NaN;
const ms = (v: number) => `${v.toFixed(1)} ms`;

/** Endpoint `i` of Service `s`: addresses of 10.128.0.0/9, never repeated. */
const endpointIp = (s: number, i: number) => {
  const n = s * PER_SERVICE + i;
  return `10.${128 + ((n >> 16) & 127)}.${(n >> 8) & 255}.${n & 255}`;
};

interface Slice extends KubernetesObject {
  endpoints: Array<{ addresses: string[]; conditions: { ready: boolean } }>;
}

function sliceOf(service: number): Slice {
  return {
    apiVersion: "discovery.k8s.io/v1beta1",
    kind: "EndpointSlice",
    metadata: {
      name: `svc-${service}-1`,
      namespace: "bench",
      labels: { "kubernetes.io/service-name": `svc-${service}` },
    },
    addressType: "IPv4",
    endpoints: Array.from({ length: PER_SERVICE }, (_, i) => ({
      addresses: [endpointIp(service, i)],
      conditions: { ready: true },
    })),
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
  } as Slice;
}

async function main(): Promise<void> {
  const dir = scratchDir("oa-services-");
  const kube = await startKube();
  const nb = await startNorthbound({ tcp: false });
  const service = await startServiceProcess(dir, kube, [
    "--nb-remote",
    nb.unixRemote,
    "--network-model",
    "ovn-kubernetes",
    "--cluster-ip-subnet",
    "192.168.0.0/16",
    "--lease-namespace",
    "default",
  ]);
  await kube.objects.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "bench" } });
  const northbound = new OvsdbClient({ remote: nb.unixRemote, database: NB });
  await northbound.connect({ timeoutMs: 10_000 });
  const balancers = await northbound.cache(NB, {
    Load_Balancer: { columns: ["name", "vips"], indexes: { name: indexBy.column("name") } },
  });
  const vipsOf = (s: number): Record<string, string> =>
    (balancers.table("Load_Balancer").find("name", `Service_bench/svc-${s}_TCP`)?.vips as Record<
      string,
      string
    >) ?? {};
  const backendCount = (s: number) => Object.values(vipsOf(s)).join(",").split(",").filter(Boolean).length;

  let made = 0;
  const slices: Slice[] = [];
  for (const endpoints of SIZES) {
    const services = endpoints / PER_SERVICE;
    const started = performance.now();
    for (let s = made; s < services; s++) {
      await kube.objects.create({
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: `svc-${s}`, namespace: "bench" },
        spec: { ports: [{ name: "http", port: 80, targetPort: 8080 }] },
      } as KubernetesObject);
      slices[s] = (await kube.objects.create(sliceOf(s))) as Slice;
    }
    made = services;
    const ready = (s: number) => (slices[s] as Slice).endpoints.filter((e) => e.conditions.ready).length;
    while (![...Array(services).keys()].every((s) => backendCount(s) === ready(s))) {
      if (performance.now() - started > 600_000)
        throw new Error(`${services} Services not all programmed in 10 min`);
      await sleep(100);
    }
    log(
      `${endpoints} endpoints in ${services} Services created and programmed in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );

    // An endpoint of a random Service stops being ready: the time until its load balancer drops it.
    const latencies: number[] = [];
    for (let c = 0; c < CHANGES; c++) {
      const s = Math.floor(Math.random() * services);
      const slice = slices[s] as Slice;
      const before = backendCount(s);
      const flipped = slice.endpoints.findIndex((e) => e.conditions.ready) ?? 0;
      const ready = slice.endpoints.filter((e) => e.conditions.ready).length > PER_SERVICE / 2;
      // Half of them at most go unready; then they come back.
      const at = ready ? flipped : slice.endpoints.findIndex((e) => !e.conditions.ready);
      (slice.endpoints[at] as Slice["endpoints"][number]).conditions.ready = !ready;
      const t0 = performance.now();
      slices[s] = (await kube.objects.replace(slice)) as Slice;
      const want = before + (ready ? -1 : 1);
      while (backendCount(s) !== want) {
        if (performance.now() - t0 > 30_000) throw new Error(`svc-${s}: backends not ${want} in 30 s`);
        await new Promise((r) => setImmediate(r));
      }
      latencies.push(performance.now() - t0);
    }

    // The same row written straight: one Load_Balancer's VIPs, as the service writes them.
    const bare: number[] = [];
    const [row] = await northbound.transact(NB, [
      op.select("Load_Balancer", [["name", "==", "Service_bench/svc-0_TCP"]], ["_uuid", "vips"]),
    ]);
    const current = row?.rows?.[0] as Row;
    const full = current.vips as Record<string, string>;
    const fewer = Object.fromEntries(
      Object.entries(full).map(([vip, backends]) => [vip, backends.split(",").slice(1).join(",")]),
    );
    for (let c = 0; c < CHANGES; c++) {
      const t0 = performance.now();
      await northbound.transact(NB, [
        op.update("Load_Balancer", [["_uuid", "==", String(current._uuid)]], { vips: c % 2 ? full : fewer }),
      ]);
      bare.push(performance.now() - t0);
    }
    await northbound.transact(NB, [
      op.update("Load_Balancer", [["_uuid", "==", String(current._uuid)]], { vips: full }),
    ]);
    latencies.sort((a, b) => a - b);
    bare.sort((a, b) => a - b);
    console.log(
      `services-bench: ${endpoints} endpoints (${services} Services): slice change -> backends p50 ${ms(quantile(latencies, 0.5))} p99 ${ms(quantile(latencies, 0.99))}; bare transaction p50 ${ms(quantile(bare, 0.5))} p99 ${ms(quantile(bare, 0.99))}`,
    );
  }

  northbound.close();
  await service.stop();
  await nb.stop();
  await kube.stop();
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`services-bench: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
