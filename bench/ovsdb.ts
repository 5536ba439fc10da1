/**
 * npm run bench:ovsdb — logical switch port creation through ovsdb-client,
 * against ovn-nbctl as the baseline, each on a fresh standalone
 * OVN_Northbound in this same run, both writing the same rows (name,
 * addresses, and the pod in external_ids, as the service writes them); then
 * the time for a new client's cache to receive 100,000 existing ports.
 *
 * PORTS (default 10000) and CACHE_PORTS (default 100000) override the sizes.
 */
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { OvsdbClient, indexBy, namedUuid, op, type Operation } from "ovsdb-client";
import { startNorthbound, type OvsdbServer } from "ovsdb-sandbox";

const NB = "OVN_Northbound";
const PORTS = Number(process.env.PORTS ?? 10_000);
const CACHE_PORTS = Number(process.env.CACHE_PORTS ?? 100_000);
const IN_FLIGHT = 256;
const BATCH = Number(process.env.BATCH ?? 100);
const BATCHES_IN_FLIGHT = Number(process.env.BATCHES_IN_FLIGHT ?? 4);

function mac(i: number): string {
  const hex = i.toString(16).padStart(8, "0");
  return `0a:58:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}:${hex.slice(6, 8)}`;
}
function ip(i: number): string {
  return `10.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
}
function portOps(i: number, tag: string): Operation[] {
  const name = `${tag}${i}`;
  return [
    op.insert(
      "Logical_Switch_Port",
      { name, addresses: [`${mac(i)} ${ip(i)}`], external_ids: { pod: `bench/${name}` } },
      { uuidName: `p${i}` },
    ),
  ];
}
function attach(first: number, count: number): Operation {
  const ports = Array.from({ length: count }, (_, k) => namedUuid(`p${first + k}`));
  return op.mutate("Logical_Switch", [["name", "==", "sw"]], [["ports", "insert", ports]]);
}

async function freshNorthbound(): Promise<{ server: OvsdbServer; client: OvsdbClient }> {
  const server = await startNorthbound();
  const client = new OvsdbClient({ remote: server.unixRemote, database: NB, requestTimeoutMs: 120_000 });
  await client.connect({ timeoutMs: 5000 });
  await client.transact(NB, [op.insert("Logical_Switch", { name: "sw" })]);
  return { server, client };
}

async function countPorts(client: OvsdbClient): Promise<number> {
  const [r] = await client.transact(NB, [op.select("Logical_Switch_Port", [], ["name"])]);
  return r?.rows?.length ?? 0;
}

async function pipelined(): Promise<number> {
  const { server, client } = await freshNorthbound();
  const started = process.hrtime.bigint();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < PORTS) {
      const i = next++;
      await client.transact(NB, [...portOps(i, "pl"), attach(i, 1)]);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const made = await countPorts(client);
  if (made !== PORTS) throw new Error(`pipelined: expected ${PORTS} ports, found ${made}`);
  client.close();
  await server.stop();
  return PORTS / seconds;
}

/** Transactions of BATCH ports, BATCHES_IN_FLIGHT at a time (the next is encoded while one is committed). */
async function batched(client: OvsdbClient, total: number, tag: string): Promise<number> {
  const started = process.hrtime.bigint();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const first = next;
      const count = Math.min(BATCH, total - first);
      next += count;
      const ops: Operation[] = [];
      for (let i = first; i < first + count; i++) ops.push(...portOps(i, tag));
      ops.push(attach(first, count));
      await client.transact(NB, ops);
    }
  };
  await Promise.all(Array.from({ length: BATCHES_IN_FLIGHT }, worker));
  return total / (Number(process.hrtime.bigint() - started) / 1e9);
}

/**
 * One ovn-nbctl invocation for PORTS ports: "same rows" writes what the
 * client writes, in nbctl's quickest form (lsp-add, then one set of
 * addresses and external_ids); "name and addresses" is lsp-add and
 * lsp-set-addresses alone, the baseline of earlier runs.
 */
async function nbctl(rows: "same rows" | "name and addresses"): Promise<number> {
  const server = await startNorthbound();
  await promisify(execFile)("ovn-nbctl", [`--db=${server.unixRemote}`, "ls-add", "sw"]);
  const args = [`--db=${server.unixRemote}`];
  for (let i = 0; i < PORTS; i++) {
    args.push("--", "lsp-add", "sw", `nc${i}`, "--");
    if (rows === "same rows")
      args.push(
        "set",
        "Logical_Switch_Port",
        `nc${i}`,
        `addresses="${mac(i)} ${ip(i)}"`,
        `external_ids:pod=bench/nc${i}`,
      );
    else args.push("lsp-set-addresses", `nc${i}`, `${mac(i)} ${ip(i)}`);
  }
  // 10,000 ports' commands are more than the 2 MiB execve allows under the usual 8 MiB stack limit:
  // a shell raises its limit, then runs the one invocation.
  const script = path.join(server.dir, "ports.sh");
  const quoted = args.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  writeFileSync(script, `ulimit -s unlimited 2>/dev/null || ulimit -s 1048576\nexec ovn-nbctl ${quoted}\n`);
  const started = process.hrtime.bigint();
  await promisify(execFile)("sh", [script], { maxBuffer: 64 * 1024 * 1024 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const { stdout } = await promisify(execFile)(
    "ovn-nbctl",
    [`--db=${server.unixRemote}`, "--bare", "--columns=_uuid", "list", "Logical_Switch_Port"],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const made = stdout.split("\n").filter((l) => l.trim()).length;
  if (made !== PORTS) throw new Error(`ovn-nbctl: expected ${PORTS} ports, found ${made}`);
  await server.stop();
  return PORTS / seconds;
}

async function cacheSync(): Promise<{ seconds: number; heapMB: number }> {
  const { server, client } = await freshNorthbound();
  await batched(client, CACHE_PORTS, "c");
  const fresh = new OvsdbClient({ remote: server.unixRemote, database: NB, requestTimeoutMs: 120_000 });
  await fresh.connect({ timeoutMs: 5000 });
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const started = process.hrtime.bigint();
  const cache = await fresh.cache(NB, {
    // The columns the service monitors (ovn/ports.ts), not every column of the table.
    Logical_Switch_Port: {
      columns: ["name", "addresses", "enabled", "external_ids"],
      indexes: { name: indexBy.column("name"), pod: indexBy.mapKey("pod") },
    },
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const size = cache.table("Logical_Switch_Port").size;
  if (size !== CACHE_PORTS) throw new Error(`cache: expected ${CACHE_PORTS} ports, found ${size}`);
  const heapMB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
  fresh.close();
  client.close();
  await server.stop();
  return { seconds, heapMB };
}

const fmt = (n: number): string => Math.round(n).toString();

const pipelinedRate = await pipelined();
console.log(
  `client-pipelined: ${PORTS} ports, one transaction each, ${IN_FLIGHT} in flight: ${fmt(pipelinedRate)} ports/s`,
);
// A run of 10,000 ports lasts a fifth of a second: the first pays for JIT, as a long-running service
// does once. One warm-up run, then the median of three, each on a fresh Northbound.
const batchedRuns: number[] = [];
for (let run = 0; run < 4; run++) {
  const b = await freshNorthbound();
  const rate = await batched(b.client, PORTS, "b");
  b.client.close();
  await b.server.stop();
  if (run > 0) batchedRuns.push(rate);
}
const batchedRate = [...batchedRuns].sort((x, y) => x - y)[1] as number;
console.log(
  `client-batched: ${PORTS} ports in transactions of ${BATCH}, ${BATCHES_IN_FLIGHT} in flight: ${fmt(batchedRate)} ports/s (median of ${batchedRuns.map(fmt).join(", ")}, after a warm-up run)`,
);
const nbctlRate = await nbctl("same rows");
console.log(
  `ovn-nbctl: ${PORTS} ports, the same rows (lsp-add, set addresses and external_ids), in one invocation: ${fmt(nbctlRate)} ports/s`,
);
const nbctlBareRate = await nbctl("name and addresses");
console.log(
  `ovn-nbctl: ${PORTS} ports, name and addresses only (lsp-add, lsp-set-addresses), in one invocation: ${fmt(nbctlBareRate)} ports/s`,
);
const sync = await cacheSync();
console.log(
  `cache: a new client received ${CACHE_PORTS} existing ports (name, addresses, enabled, external_ids) in ${sync.seconds.toFixed(2)} s (heap +${Math.round(sync.heapMB)} MB, with name and pod indexes)`,
);
console.log(
  `ovsdb-bench: client-pipelined ${fmt(pipelinedRate)} ports/s, client-batched ${fmt(batchedRate)} ports/s, ovn-nbctl ${fmt(nbctlRate)} ports/s, ratio ${(batchedRate / nbctlRate).toFixed(2)} (${(batchedRate / nbctlBareRate).toFixed(2)} against ovn-nbctl writing name and addresses only); monitor sync of ${CACHE_PORTS} ports ${sync.seconds.toFixed(2)} s`,
);
