/**
 * npm run bench:pods — pods admitted through their binding (address chosen,
 * port claimed under its `wait`s) by the real HTTPS service, with 1,000,
 * 10,000 and 50,000 ports already on the subnet's switch, against two
 * baselines measured in the same run at the same sizes:
 * - seed 002's way: one `ovn-nbctl lsp-add ... -- lsp-set-addresses ...` per pod;
 * - the bare transaction: the same port row inserted and linked to the claims
 *   switch, with no `wait` and no admission around it, as many in flight.
 *
 * PODS (default 1000) bindings per size, IN_FLIGHT (16) at once over
 * keep-alive HTTPS; NBCTL_PODS (200; a fifth of it at 50,000, where each
 * ovn-nbctl reads the whole database) invocations per size; SIZES
 * (1000,10000,50000) the existing ports.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import inspector from "node:inspector/promises";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { pino } from "pino";
import { namedUuid, op, OvsdbClient, type Operation } from "ovsdb-client";
import { startNorthbound, type OvsdbServer } from "ovsdb-sandbox";
import { ClusterState } from "../cluster/state.js";
import { CLAIMS_SWITCH, PORT_IDS } from "../ovn/rows.js";
import { macOfAddress, numberToAddress } from "../domain/addresses.js";
import { loadConfig } from "../service/config.js";
import { startService } from "../service/server.js";

const NB = "OVN_Northbound";
const PODS = Number(process.env.PODS ?? 1_000);
const IN_FLIGHT = Number(process.env.IN_FLIGHT ?? 16);
const NBCTL_PODS = Number(process.env.NBCTL_PODS ?? 200);
const SIZES = (process.env.SIZES ?? "1000,10000,50000").split(",").map(Number);
const run = promisify(execFile);

/** The i-th address of 10.16.0.0/16 after the gateway. */
const addressOf = (i: number) => numberToAddress(BigInt(0x0a100000 + 2 + i), "ipv4");

/** The row of pod `name`'s port at `ip` on ovn-default, with our external_ids, as the service writes it. */
function portRow(name: string, ip: string) {
  const mac = macOfAddress(ip);
  return {
    name: `${name}.bench`,
    addresses: [`${mac} ${ip}`],
    port_security: [`${mac} ${ip}`],
    external_ids: {
      [PORT_IDS.owner]: "pod-port",
      [PORT_IDS.pod]: `bench/${name}`,
      [PORT_IDS.subnet]: "ovn-default",
      [PORT_IDS.ipv4]: `ovn-default|${ip}`,
      [PORT_IDS.mac]: `ovn-default|${mac}`,
    },
  };
}

/** A Northbound with the cluster router, the subnet's switch and `existing` ports on it (ours, as if admitted before). */
async function northboundWith(existing: number): Promise<{ server: OvsdbServer; client: OvsdbClient }> {
  const server = await startNorthbound();
  const client = new OvsdbClient({ remote: server.unixRemote, database: NB, requestTimeoutMs: 120_000 });
  await client.connect({ timeoutMs: 5_000 });
  await client.transact(NB, [
    op.insert("Logical_Router", { name: "ovn-cluster" }),
    op.insert("Logical_Switch", { name: "ovn-default", other_config: { subnet: "10.16.0.0/16" } }),
  ]);
  for (let from = 0; from < existing; from += 1_000) {
    const ops: Operation[] = [];
    const names: string[] = [];
    for (let i = from; i < Math.min(existing, from + 1_000); i++) {
      const ip = addressOf(i);
      names.push(`p${i}`);
      ops.push(op.insert("Logical_Switch_Port", portRow(`existing-${i}`, ip), { uuidName: `p${i}` }));
    }
    ops.push(
      op.mutate(
        "Logical_Switch",
        [["name", "==", "ovn-default"]],
        [["ports", "insert", names.map((n) => namedUuid(n))]],
      ),
    );
    await client.transact(NB, ops);
  }
  const [check] = await client.transact(NB, [op.select("Logical_Switch_Port", [], ["_uuid"])]);
  if ((check?.rows?.length ?? 0) !== existing)
    throw new Error(`setup: expected ${existing} existing ports, found ${check?.rows?.length}`);
  return { server, client };
}

/** With PROFILE=<dir>: a CPU profile of our process over the bindings alone (not the set-up), written there. */
async function profiler(name: string): Promise<{ stop(): Promise<void> }> {
  const dir = process.env.PROFILE;
  if (!dir) return { stop: async () => undefined };
  const session = new inspector.Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  return {
    async stop() {
      const { profile } = await session.post("Profiler.stop");
      writeFileSync(path.join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/** CPU seconds a process has used (user + system), from /proc. */
function cpuSeconds(pid: number | undefined): number {
  if (!pid) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Bindings per second through the service's /mutate, and the CPU milliseconds per pod of ovsdb-server and of ours. */
async function admitted(existing: number): Promise<{ perSecond: number; serverMs: number; oursMs: number }> {
  const { server, client } = await northboundWith(existing);
  const view = ClusterState.of({
    Subnet: [
      {
        metadata: { name: "ovn-default" },
        spec: { cidrBlock: "10.16.0.0/16", gateway: "10.16.0.1", default: true },
      },
    ],
    Pod: [
      // The pods the existing ports belong to, as the API server holds them (else the reconciler frees their ports).
      ...Array.from({ length: existing }, (_, i) => ({
        metadata: {
          name: `existing-${i}`,
          namespace: "bench",
          annotations: {
            "ovn.kubernetes.io/allocated": "true",
            "ovn.kubernetes.io/logical_switch": "ovn-default",
            "ovn.kubernetes.io/ip_address": addressOf(i),
            "ovn.kubernetes.io/mac_address": macOfAddress(addressOf(i)),
          },
        },
        spec: { nodeName: "node-1" },
      })),
      ...Array.from({ length: PODS }, (_, i) => ({
        metadata: { name: `pod-${i}`, namespace: "bench", uid: `uid-${i}` },
      })),
    ],
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), "oa-bench-pods-"));
  const config = loadConfig(
    [
      "--port",
      "0",
      "--certs-dir",
      `${dir}/certs`,
      "--state-dir",
      `${dir}/state`,
      "--nb-remote",
      server.unixRemote,
    ],
    {},
  );
  if (config === "help") throw new Error("unexpected --help");
  const service = await startService(config, { log: pino({ level: process.env.LOG_LEVEL ?? "warn" }), view });
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: IN_FLIGHT,
    ca: service.caFile ? readFileSync(service.caFile) : undefined,
  });
  const bind = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const body = JSON.stringify({
        apiVersion: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        request: {
          uid: `bind-${i}`,
          kind: { group: "", version: "v1", kind: "Binding" },
          resource: { group: "", version: "v1", resource: "pods" },
          subResource: "binding",
          operation: "CREATE",
          namespace: "bench",
          name: `pod-${i}`,
          object: {
            apiVersion: "v1",
            kind: "Binding",
            metadata: { name: `pod-${i}`, namespace: "bench" },
            target: { kind: "Node", name: "node-1" },
          },
        },
      });
      const req = https.request(
        `${service.url}/mutate`,
        { method: "POST", agent, headers: { "content-type": "application/json" } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const answer = JSON.parse(Buffer.concat(chunks).toString()) as {
              response?: { allowed?: boolean; patch?: string };
            };
            if (answer.response?.allowed && answer.response.patch) resolve();
            else
              reject(
                new Error(`binding ${i} not addressed: ${Buffer.concat(chunks).toString().slice(0, 300)}`),
              );
          });
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  // Measured in steady state: the start-up pass over every stored pod (the reconciler's, every 30 s after) is done.
  await service.reconcile();
  let next = 0;
  const profile = await profiler(`pods-${existing}`);
  const serverBefore = cpuSeconds(server.pid);
  const oursBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < PODS) await bind(next++);
    }),
  );
  const perSecond = PODS / (Number(process.hrtime.bigint() - started) / 1e9);
  const serverMs = ((cpuSeconds(server.pid) - serverBefore) * 1000) / PODS;
  const oursUsed = process.cpuUsage(oursBefore);
  const oursMs = (oursUsed.user + oursUsed.system) / 1000 / PODS;
  await profile.stop();
  const [ports] = await client.transact(NB, [op.select("Logical_Switch_Port", [], ["_uuid", "name"])]);
  if ((ports?.rows?.length ?? 0) !== existing + PODS)
    throw new Error(`expected ${existing + PODS} ports, found ${ports?.rows?.length}`);
  agent.destroy();
  await service.close();
  client.close();
  await server.stop();
  return { perSecond, serverMs, oursMs };
}

/** Seed 002's watcher: one ovn-nbctl invocation per pod (lsp-add, then lsp-set-addresses). */
async function nbctl(existing: number, pods: number): Promise<number> {
  const { server, client } = await northboundWith(existing);
  const started = process.hrtime.bigint();
  for (let i = 0; i < pods; i++) {
    const ip = addressOf(existing + i);
    await run("ovn-nbctl", [
      `--db=${server.unixRemote}`,
      "lsp-add",
      "ovn-default",
      `bench_pod-${i}`,
      "--",
      "lsp-set-addresses",
      `bench_pod-${i}`,
      `${macOfAddress(ip)} ${ip}`,
    ]);
  }
  const perSecond = pods / (Number(process.hrtime.bigint() - started) / 1e9);
  client.close();
  await server.stop();
  return perSecond;
}

/** The bare transaction: the claim's rows (a port inserted and linked to the claims switch), no `wait`, IN_FLIGHT at once. */
async function bare(existing: number): Promise<number> {
  const { server, client } = await northboundWith(existing);
  await client.transact(NB, [op.insert("Logical_Switch", { name: CLAIMS_SWITCH })]);
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < PODS) {
        const i = next++;
        await client.transact(NB, [
          op.insert(
            "Logical_Switch_Port",
            { ...portRow(`pod-${i}`, addressOf(existing + i)), enabled: false },
            { uuidName: "port" },
          ),
          op.mutate(
            "Logical_Switch",
            [["name", "==", CLAIMS_SWITCH]],
            [["ports", "insert", [namedUuid("port")]]],
          ),
        ]);
      }
    }),
  );
  const perSecond = PODS / (Number(process.hrtime.bigint() - started) / 1e9);
  client.close();
  await server.stop();
  return perSecond;
}

const rates = new Map<number, { ours: number; nbctl: number; bare: number }>();
for (const existing of SIZES) {
  const { perSecond: ours, serverMs, oursMs } = await admitted(existing);
  const theirs = await nbctl(
    existing,
    existing >= 50_000 ? Math.max(1, Math.round(NBCTL_PODS / 5)) : NBCTL_PODS,
  );
  const rows = await bare(existing);
  rates.set(existing, { ours, nbctl: theirs, bare: rows });
  console.log(
    `  ${existing} ports: ${Math.round(ours)} pods/s admitted through binding (${PODS} pods, ${IN_FLIGHT} in flight), ovn-nbctl ${theirs.toFixed(1)} pods/s, ratio ${(ours / theirs).toFixed(1)}; CPU per pod: ovsdb-server ${serverMs.toFixed(2)} ms, ours ${oursMs.toFixed(2)} ms; bare transaction ${Math.round(rows)}/s, ${(ours / rows).toFixed(2)} of it`,
  );
}
const at = (n: number) => rates.get(n);
const [k1, k10, k50] = [at(1_000), at(10_000), at(50_000)];
if (k1 && k10 && k50)
  console.log(
    `pods-bench: ${Math.round(k10.ours)} pods/s at 10000 ports, ${Math.round(k1.ours)} at 1000, ${Math.round(k50.ours)} at 50000, flatness ${(k10.ours / k1.ours).toFixed(2)} (50000: ${(k50.ours / k1.ours).toFixed(2)}), ratio ${(k10.ours / k10.nbctl).toFixed(1)} vs ovn-nbctl, ${(k10.ours / k10.bare).toFixed(2)} of the bare transaction`,
  );
