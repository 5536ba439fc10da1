/**
 * npm run bench:pods — pods admitted through their binding (address chosen,
 * port claimed under its `wait`s) by the real HTTPS service, with 1,000 and
 * 10,000 ports already in the Northbound, against seed 002's way: one
 * `ovn-nbctl lsp-add ... -- lsp-set-addresses ...` per pod, measured in the
 * same run at the same sizes.
 *
 * PODS (default 1000) bindings per size, IN_FLIGHT (16) at once over
 * keep-alive HTTPS; NBCTL_PODS (200) ovn-nbctl invocations per size.
 */
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { pino } from "pino";
import { namedUuid, op, OvsdbClient, type Operation } from "ovsdb-client";
import { startNorthbound, type OvsdbServer } from "ovsdb-sandbox";
import { ClusterState } from "../cluster/state.js";
import { PORT_IDS } from "../ovn/rows.js";
import { macOfAddress, numberToAddress } from "../domain/addresses.js";
import { loadConfig } from "../service/config.js";
import { startService } from "../service/server.js";

const NB = "OVN_Northbound";
const PODS = Number(process.env.PODS ?? 1_000);
const IN_FLIGHT = Number(process.env.IN_FLIGHT ?? 16);
const NBCTL_PODS = Number(process.env.NBCTL_PODS ?? 200);
const SIZES = [1_000, 10_000];
const run = promisify(execFile);

/** The i-th address of 10.16.0.0/16 after the gateway. */
const addressOf = (i: number) => numberToAddress(BigInt(0x0a100000 + 2 + i), "ipv4");

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
      const mac = macOfAddress(ip);
      names.push(`p${i}`);
      ops.push(
        op.insert(
          "Logical_Switch_Port",
          {
            name: `existing-${i}.bench`,
            addresses: [`${mac} ${ip}`],
            port_security: [`${mac} ${ip}`],
            external_ids: {
              [PORT_IDS.owner]: "pod-port",
              [PORT_IDS.pod]: `bench/existing-${i}`,
              [PORT_IDS.subnet]: "ovn-default",
              [PORT_IDS.ipv4]: `ovn-default|${ip}`,
              [PORT_IDS.mac]: `ovn-default|${mac}`,
            },
          },
          { uuidName: `p${i}` },
        ),
      );
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

/** Bindings per second through the service's /mutate. */
async function admitted(existing: number): Promise<number> {
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
    ca: service.caFile ? (await import("node:fs")).readFileSync(service.caFile) : undefined,
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
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < PODS) await bind(next++);
    }),
  );
  const perSecond = PODS / (Number(process.hrtime.bigint() - started) / 1e9);
  const [ports] = await client.transact(NB, [op.select("Logical_Switch_Port", [], ["_uuid", "name"])]);
  if ((ports?.rows?.length ?? 0) !== existing + PODS)
    throw new Error(`expected ${existing + PODS} ports, found ${ports?.rows?.length}`);
  agent.destroy();
  await service.close();
  client.close();
  await server.stop();
  return perSecond;
}

/** Seed 002's watcher: one ovn-nbctl invocation per pod (lsp-add, then lsp-set-addresses). */
async function nbctl(existing: number): Promise<number> {
  const { server, client } = await northboundWith(existing);
  const started = process.hrtime.bigint();
  for (let i = 0; i < NBCTL_PODS; i++) {
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
  const perSecond = NBCTL_PODS / (Number(process.hrtime.bigint() - started) / 1e9);
  client.close();
  await server.stop();
  return perSecond;
}

const lines: string[] = [];
let last = { ours: 0, ratio: 0 };
for (const existing of SIZES) {
  const ours = await admitted(existing);
  const theirs = await nbctl(existing);
  last = { ours, ratio: ours / theirs };
  lines.push(
    `  ${existing} ports: ${Math.round(ours)} pods/s admitted through binding (${PODS} pods, ${IN_FLIGHT} in flight), ovn-nbctl ${theirs.toFixed(1)} pods/s (${NBCTL_PODS} pods), ratio ${(ours / theirs).toFixed(1)}`,
  );
  console.log(lines.at(-1));
}
console.log(
  `pods-bench: ${Math.round(last.ours)} pods/s at ${SIZES.at(-1)} ports, ratio ${last.ratio.toFixed(1)} vs ovn-nbctl`,
);
