/**
 * npm run soak -- --minutes N [--rate R]: the service as its own process,
 * admitting at a fixed rate through a real kube-apiserver (pods with EIPs
 * created and deleted, a node's planes toggled) and on its own HTTPS (reviews
 * no API server sent, whose claims must be released), while faults come:
 *
 *   10%  the RAFT Northbound's leader is killed   25%  it comes back
 *   30%  node-2's Open_vSwitch database stops     +min(60 s, 20%)  it starts again
 *   55%  the whole Northbound is restarted
 *   75%  the kube-apiserver is restarted
 *
 * Then it waits for convergence (every encap IP, gateway row, logical switch
 * port and NAT row matches the stored objects; no claim or row is left for
 * what is gone) and
 * prints one line:
 *
 *   soak: <n> admissions, <errors> errors, p99 <ms>, rss start/end <MB>, fds start/end <n>, rss slope <MB/min> after warm-up (fds <n/min>), converged <yes|no>
 *
 * An operation is retried while the API server or the Northbound is away (up
 * to 20 s); an error is one that still failed. Exit 1 when not converged.
 */
import { copyFileSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import https from "node:https";
import path from "node:path";
import { parseArgs } from "node:util";
import { CoreV1Api } from "@kubernetes/client-node";
import { op, OvsdbClient } from "ovsdb-client";
import { scratchDir, startOpenVswitch, startRaftCluster, type OvsdbServer } from "ovsdb-sandbox";
import { planEncapIps } from "../ovn/encap.js";
import { startKube } from "../test/harness/kube.js";
import { startServiceProcess } from "./service-process.js";
import { SEED_GATEWAY } from "../test/fixtures/index.js";

const NB = "OVN_Northbound";
const NN = "ovn.kubernetes.io/node_networks";
const { values } = parseArgs({
  options: { minutes: { type: "string", default: "1" }, rate: { type: "string", default: "8" } },
});
const minutes = Number(values.minutes);
const rate = Number(values.rate);
if (!(minutes > 0) || !(rate > 0)) throw new Error("--minutes and --rate: expected positive numbers");
const durationMs = minutes * 60_000;
const LIVE_PODS = 40;
/** More addresses than live pods: a pod's EIP was released long before it is given again. */
const EIP_POOL = 200;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (line: string) => process.stderr.write(`soak: ${line}\n`);

function percentile(sorted: number[], p: number): number {
  return sorted.length
    ? (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number)
    : 0;
}

/** The service process's resident memory (MB) and open file descriptors. */
/** Minutes after which memory and descriptors should stop growing: the slope is taken from there. */
const WARM_UP_MINUTES = 3;

/** The least-squares slope of (x, y) points; undefined with fewer than three. */
function slope(points: Array<[number, number]>): number | undefined {
  if (points.length < 3) return undefined;
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  return sxx === 0 ? undefined : sxy / sxx;
}

function usage(pid: number): { rssMb: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { rssMb: Math.round(kb / 1024), fds: readdirSync(`/proc/${pid}/fd`).length };
}

async function main(): Promise<void> {
  const dir = scratchDir("oa-soak-");
  log(`${minutes} min at ${rate} admissions/s; files in ${dir}`);
  const kube = await startKube();
  const raft = await startRaftCluster("northbound", { electionTimerMs: 1000 });
  const nodes: Record<string, OvsdbServer> = {};
  for (const name of ["node-1", "node-2"])
    nodes[name] = await startOpenVswitch({ externalIds: { "system-id": `chassis-${name}`, hostname: name } });
  const nb = new OvsdbClient({ remote: raft.remote, database: NB, backoff: { minMs: 100, maxMs: 1000 } });
  await nb.connect({ timeoutMs: 10_000 });
  await nb.transact(NB, [op.insert("Logical_Router", { name: "ovn-cluster" })]);

  const service = await startServiceProcess(dir, kube, [
    "--nb-remote",
    raft.remote,
    "--node-ovsdb-override",
    Object.entries(nodes)
      .map(([name, db]) => `${name}=${db.unixRemote}`)
      .join(";"),
    "--lease-namespace",
    "default",
    "--reconcile-interval",
    "2",
    "--nat-release-grace",
    "5",
  ]);
  const { url, ca } = service;
  const core = kube.kubeConfig.makeApiClient(CoreV1Api);

  /** Retried while the API server, or the service behind a webhook, is away. */
  const latencies: number[] = [];
  let admissions = 0;
  let errors = 0;
  const firstErrors: string[] = [];
  /**
   * Runs a client call as kubectl would, retrying what is transient. `settled`
   * says which answers to a retry mean the first try did it (its reply was
   * lost to the restart): a 404 for a delete, a 409 for a create; and
   * `conflicts` that a 409 is worth a fresh read-modify-write.
   */
  async function operation(
    what: string,
    call: () => Promise<unknown>,
    { settled = [] as number[], conflicts = false } = {},
  ): Promise<boolean> {
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      try {
        await call();
        admissions++;
        latencies.push(performance.now() - started);
        return true;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (attempt > 1 && typeof code === "number" && settled.includes(code)) {
          admissions++;
          latencies.push(performance.now() - started);
          return true;
        }
        // A refused connection (ECONNREFUSED: the API server restarting) or a 5xx/429 is worth another try.
        const transient =
          typeof code !== "number" || code >= 500 || code === 429 || (conflicts && code === 409);
        if (!transient || performance.now() - started > 20_000) {
          errors++;
          // The API server's Status message says why (a webhook's denial, a conflict), not the client's wrapper.
          const body = (err as { body?: unknown }).body;
          const status =
            typeof body === "string" ? /"message":"((?:[^"\\]|\\.)*)"/.exec(body)?.[1] : undefined;
          if (firstErrors.length < 5)
            firstErrors.push(`${what}: ${code ?? ""} ${(status ?? (err as Error).message).slice(0, 300)}`);
          return false;
        }
        await sleep(Math.min(2_000, 100 * attempt));
      }
    }
  }

  await core.createNamespace({ body: { metadata: { name: "soak" } } });
  const kubeSystem = await core.readNamespace({ name: "kube-system" });
  kubeSystem.metadata!.labels = {
    ...kubeSystem.metadata?.labels,
    "kubernetes.io/metadata.name": "kube-system",
  };
  await core.replaceNamespace({ name: "kube-system", body: kubeSystem });
  const nodePlanes: Record<string, Record<string, string>> = {
    "node-1": { storage: "10.10.10.1" },
    "node-2": { storage: "10.10.10.2" },
  };
  const internalIp: Record<string, string> = { "node-1": "192.168.1.1", "node-2": "192.168.1.2" };
  for (const name of Object.keys(nodes)) {
    await core.createNode({
      body: {
        metadata: { name, annotations: { [NN]: JSON.stringify(nodePlanes[name]) } },
        status: { addresses: [{ type: "InternalIP", address: internalIp[name] as string }] },
      },
    });
  }
  await kube.createSubnet("ovn-default", { cidrBlock: "10.16.0.0/16", gateway: "10.16.0.1", default: true });
  await core.createNamespacedConfigMap({
    namespace: "kube-system",
    body: {
      metadata: { name: "ovn-external-gw-config" },
      data: { ...SEED_GATEWAY, "external-gw-nodes": "node-1" },
    },
  });
  await sleep(2_000); // the view sees the gateway before the first pod asks for an EIP

  const live: string[] = [];
  const uncreated = new Set<string>();
  const eipOf = (i: number) => `172.56.${Math.floor((i % EIP_POOL) / 250)}.${((i % EIP_POOL) % 250) + 2}`;
  const ipOf = (i: number) => `10.16.${Math.floor(i / 250) % 250}.${(i % 250) + 2}`;
  const directReview = (i: number) => ({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: `direct-${i}`,
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      operation: "CREATE",
      namespace: "soak",
      name: `never-stored-${i}`,
      object: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: {
          name: `never-stored-${i}`,
          namespace: "soak",
          annotations: { "ovn.kubernetes.io/eip": `172.56.200.${(i % 250) + 2}` },
        },
        spec: { containers: [{ name: "c", image: "i" }] },
      },
      oldObject: null,
    },
  });
  const postReview = (body: unknown) =>
    new Promise<void>((resolve, reject) => {
      const req = https.request(
        `${url}/validate`,
        { method: "POST", ca, headers: { "content-type": "application/json" } },
        (res) => {
          res.resume();
          res.on("end", () =>
            res.statusCode === 200
              ? resolve()
              : reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { code: res.statusCode })),
          );
        },
      );
      req.on("error", reject);
      req.end(JSON.stringify(body));
    });

  const started = Date.now();
  const at = (fraction: number) => started + fraction * durationMs;
  const outage = Math.min(60_000, 0.2 * durationMs);
  let leader = -1;
  const faults: Array<{ when: number; what: string; run: () => Promise<void> }> = [
    {
      when: at(0.1),
      what: "RAFT leader killed",
      run: async () => {
        leader = await raft.leader(10_000);
        await raft.members[leader]?.kill();
      },
    },
    { when: at(0.25), what: "RAFT member back", run: async () => raft.members[leader]?.start() },
    { when: at(0.3), what: "node-2 Open_vSwitch stopped", run: async () => nodes["node-2"]?.stop() },
    {
      when: at(0.3) + outage,
      what: `node-2 Open_vSwitch started after ${Math.round(outage / 1000)} s`,
      run: async () => nodes["node-2"]?.start(),
    },
    {
      when: at(0.55),
      what: "Northbound restarted",
      run: async () => {
        for (const member of raft.members) await member.stop();
        for (const member of raft.members) await member.start();
      },
    },
    { when: at(0.75), what: "kube-apiserver restarted", run: () => kube.restartApiServer() },
  ];
  const faultsDone = (async () => {
    for (const fault of faults) {
      await sleep(Math.max(0, fault.when - Date.now()));
      log(`${Math.round((Date.now() - started) / 1000)} s: ${fault.what}`);
      await fault.run().catch((err: Error) => log(`fault failed: ${err.message}`));
    }
  })();

  let baseline: { rssMb: number; fds: number } | undefined;
  // A sample a minute on stderr: growth with time shows as a trend, not just two ends.
  const samples: Array<{ minutes: number; rssMb: number; fds: number }> = [];
  const sampler = setInterval(() => {
    const now = usage(service.process.pid as number);
    samples.push({ minutes: (Date.now() - started) / 60_000, ...now });
    log(
      `${Math.round((Date.now() - started) / 1000)} s: rss ${now.rssMb} MB, fds ${now.fds}, ${admissions} admissions`,
    );
  }, 60_000);
  const inFlight = new Set<Promise<boolean>>();
  for (let i = 0; Date.now() - started < durationMs; i++) {
    const next = started + (i * 1000) / rate;
    await sleep(Math.max(0, next - Date.now()));
    if (!baseline && Date.now() - started > Math.min(15_000, 0.08 * durationMs))
      baseline = usage(service.process.pid as number);
    let work: Promise<boolean>;
    if (i % 5 === 3) {
      work = operation("direct review", () => postReview(directReview(i)));
    } else if (i % 10 === 9) {
      // node-2 gains and loses a plane: its Open_vSwitch must follow, also across its outage.
      const planes: Record<string, string> =
        "app" in (nodePlanes["node-2"] as Record<string, string>)
          ? { storage: "10.10.10.2" }
          : { storage: "10.10.10.2", app: "172.16.0.2" };
      nodePlanes["node-2"] = planes;
      work = operation(
        "node update",
        async () => {
          const node = await core.readNode({ name: "node-2" });
          node.metadata!.annotations = { ...node.metadata?.annotations, [NN]: JSON.stringify(planes) };
          await core.replaceNode({ name: "node-2", body: node });
        },
        { conflicts: true },
      );
    } else {
      const name = `p-${i}`;
      live.push(name);
      work = operation(
        "pod create",
        () =>
          core.createNamespacedPod({
            namespace: "soak",
            body: {
              metadata: {
                name,
                annotations: { "ovn.kubernetes.io/eip": eipOf(i), "ovn.kubernetes.io/ip_address": ipOf(i) },
              },
              // Placed at CREATE: its address and port are claimed with its EIP, in one transaction.
              spec: { nodeName: "node-1", containers: [{ name: "c", image: "i" }] },
            },
          }),
        { settled: [409] },
      ).then((created) => {
        if (!created) uncreated.add(name);
        return created;
      });
      if (live.length > LIVE_PODS) {
        const gone = live.shift() as string;
        // A pod whose create failed (counted there) has nothing to delete.
        const deleted = work.then(async () =>
          uncreated.has(gone)
            ? false
            : // No kubelet runs to finish a bound pod's graceful deletion: it goes at once, as a kubelet would have it go.
              operation(
                "pod delete",
                () => core.deleteNamespacedPod({ namespace: "soak", name: gone, gracePeriodSeconds: 0 }),
                { settled: [404] },
              ),
        );
        work = deleted;
      }
    }
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  }
  await Promise.all(inFlight);
  await faultsDone;
  clearInterval(sampler);
  log(`load done after ${Math.round((Date.now() - started) / 1000)} s; waiting for convergence`);

  // Converged: OVN and OVS are what the stored objects ask for, and nothing is left for what is gone.
  const problems = async (): Promise<string[]> => {
    const found: string[] = [];
    const pods = (await core.listNamespacedPod({ namespace: "soak" })).items;
    const wanted = pods
      .map(
        (p) =>
          `${p.metadata?.annotations?.["ovn.kubernetes.io/eip"]} ${p.metadata?.annotations?.["ovn.kubernetes.io/ip_address"]}`,
      )
      .sort();
    const [nat, routers, gatewaySwitch] = await nb.transact(NB, [
      op.select("NAT", [], ["_uuid", "external_ip", "logical_ip"]),
      op.select("Logical_Router", [], ["name", "nat"]),
      op.select("Logical_Switch", [["name", "==", "external"]], ["name"]),
    ]);
    const on = (router: string) =>
      new Set(
        ((routers?.rows?.find((r) => r.name === router)?.nat as string[] | undefined) ?? []).map(String),
      );
    const routed = (nat?.rows ?? [])
      .filter((r) => on("ovn-cluster").has(String(r._uuid)))
      .map((r) => `${String(r.external_ip)} ${String(r.logical_ip)}`)
      .sort();
    if (JSON.stringify(routed) !== JSON.stringify(wanted))
      found.push(`NAT rows ${routed.length} != stored pods' ${wanted.length}`);
    const claims = on("ovn-admission-claims").size;
    if (claims > 0) found.push(`${claims} NAT claims left`);
    // Logical switch ports: exactly the stored pods', enabled on their subnet's switch; no claim left.
    const [switches, ports] = await nb.transact(NB, [
      op.select("Logical_Switch", [], ["name", "ports"]),
      op.select("Logical_Switch_Port", [], ["_uuid", "name", "addresses", "enabled"]),
    ]);
    const portsOn = (ls: string) => {
      const uuids = new Set(
        ((switches?.rows?.find((r) => r.name === ls)?.ports as string[] | undefined) ?? []).map(String),
      );
      return (ports?.rows ?? []).filter((p) => uuids.has(String(p._uuid)));
    };
    const programmed = portsOn("ovn-default")
      .filter((p) => p.enabled !== false && String(p.name).endsWith(".soak"))
      .map((p) => `${String(p.name)} ${String(((p.addresses as string[]) ?? [])[0] ?? "").split(" ")[1]}`)
      .sort();
    const storedPorts = pods
      .map((p) => `${p.metadata?.name}.soak ${p.metadata?.annotations?.["ovn.kubernetes.io/ip_address"]}`)
      .sort();
    if (JSON.stringify(programmed) !== JSON.stringify(storedPorts))
      found.push(`ports ${programmed.length} != stored pods' ${storedPorts.length}`);
    const portClaims = portsOn("ovn-admission-claims").length;
    if (portClaims > 0) found.push(`${portClaims} port claims left`);
    if ((gatewaySwitch?.rows?.length ?? 0) !== 1) found.push("gateway switch missing");
    for (const [name, db] of Object.entries(nodes)) {
      const client = new OvsdbClient({ remote: db.unixRemote, database: "Open_vSwitch" });
      try {
        await client.connect({ timeoutMs: 2_000 });
        const [row] = await client.transact("Open_vSwitch", [
          op.select("Open_vSwitch", [], ["external_ids"]),
        ]);
        const ids = (row?.rows?.[0]?.external_ids ?? {}) as Record<string, string>;
        const plan = planEncapIps({}, internalIp[name], nodePlanes[name] as Record<string, string>);
        if (ids["ovn-encap-ip"] !== plan.encapIps)
          found.push(`${name} ovn-encap-ip ${ids["ovn-encap-ip"]} != ${plan.encapIps}`);
      } finally {
        client.close();
      }
    }
    return found;
  };
  let remaining: string[] = ["not checked"];
  for (let i = 0; i < 90 && remaining.length > 0; i++) {
    remaining = await problems().catch((err: Error) => [`check failed: ${err.message}`]);
    if (remaining.length) await sleep(1_000);
  }
  const end = usage(service.process.pid as number);
  const start = baseline ?? end;
  const sorted = latencies.sort((a, b) => a - b);
  if (remaining.length) {
    log(`not converged: ${remaining.join("; ")}`);
    // What the service said about it: its warnings, newest last.
    const warnings = readFileSync(service.logFile, "utf8")
      .split("\n")
      .filter((line) => /"level":(40|50)/.test(line));
    for (const line of warnings.slice(-8)) log(`service: ${line.slice(0, 400)}`);
    // The scratch directory goes at exit; the whole log stays for whoever investigates.
    const kept = path.join(os.tmpdir(), `ovn-admission-soak-${Date.now()}.log`);
    copyFileSync(service.logFile, kept);
    log(`service log kept in ${kept}`);
  }
  if (firstErrors.length) log(`first errors: ${firstErrors.join(" | ")}`);
  // Growth after warm-up: the least-squares slope of the minute samples from minute 3 on.
  const warm = samples.filter((x) => x.minutes >= WARM_UP_MINUTES);
  const rssSlope = slope(warm.map((x) => [x.minutes, x.rssMb]));
  const fdSlope = slope(warm.map((x) => [x.minutes, x.fds]));
  console.log(
    `soak: ${admissions} admissions, ${errors} errors, p99 ${Math.round(percentile(sorted, 99))}, rss start/end ${start.rssMb}/${end.rssMb} MB, fds start/end ${start.fds}/${end.fds}, rss slope ${rssSlope === undefined ? "n/a" : rssSlope.toFixed(2)} MB/min after warm-up (fds ${fdSlope === undefined ? "n/a" : fdSlope.toFixed(2)}/min, ${warm.length} samples from minute ${WARM_UP_MINUTES}), converged ${remaining.length ? "no" : "yes"}`,
  );
  await service.stop();
  nb.close();
  await Promise.all([kube.stop(), raft.stop(), ...Object.values(nodes).map((n) => n.stop())]);
  process.exit(remaining.length ? 1 : 0);
}

main().catch((err: Error) => {
  console.error(`soak: failed: ${err.stack ?? err.message}`);
  process.exit(2);
});
