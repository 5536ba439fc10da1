/**
 * npm run bench:nat — what holding an address by transaction costs. Each run
 * starts fresh standalone OVN_Northbound databases with the cluster router and
 * writes one EIP NAT row per pod three ways:
 *
 * - claimed: NatHandler.claim, as an admission does (read the pod's rows,
 *   then one transaction with the `wait`s that hold the address on the claims
 *   router; the stored pod later turns the claim into its row, ADR 0004);
 * - unguarded: the same rows inserted with no read and no `wait` (what a
 *   controller without conflict detection does), the baseline;
 * - ovn-nbctl: one `ovn-nbctl lr-nat-add` per pod, as a shell-out controller does.
 *
 * Then contended: every EIP wanted by 10 pods at once (one wins, nine are refused).
 * NAT_PODS (default 2000) and NBCTL_PODS (default 300) set the sizes.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { pino } from "pino";
import { namedUuid, op, OvsdbClient } from "ovsdb-client";
import { startNorthbound, type OvsdbServer } from "ovsdb-sandbox";
import { NatHandler } from "../ovn/nat.js";
import type { NatClaim } from "../domain/nat.js";

const NB = "OVN_Northbound";
const PODS = Number(process.env.NAT_PODS ?? 2_000);
const NBCTL_PODS = Number(process.env.NBCTL_PODS ?? 300);
const IN_FLIGHT = 64;

/** Distinct valid addresses for i < 62,500: the third and fourth octets count in base 250. */
const address = (prefix: string, i: number) => `${prefix}.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const eip = (i: number) => address("172.56", i);
const podIp = (i: number) => address("10.16", i);
const want = (i: number, external = eip(i)): NatClaim => ({
  pod: `bench/pod-${i}`,
  uid: `uid-${i}`,
  holds: { type: "dnat_and_snat", external_ip: external },
});

async function fresh(): Promise<{ server: OvsdbServer; client: OvsdbClient }> {
  const server = await startNorthbound();
  const client = new OvsdbClient({ remote: server.unixRemote, database: NB, requestTimeoutMs: 120_000 });
  await client.connect({ timeoutMs: 5_000 });
  await client.transact(NB, [op.insert("Logical_Router", { name: "ovn-cluster" })]);
  await new NatHandler(client, "ovn-cluster", pino({ level: "silent" })).ensureClaimsRouter();
  return { server, client };
}

/** Runs `work(i)` for i < count, `IN_FLIGHT` at a time; rows per second. */
async function rate(count: number, work: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < count) await work(next++);
    }),
  );
  return count / (Number(process.hrtime.bigint() - started) / 1e9);
}

async function natRows(client: OvsdbClient): Promise<number> {
  const [r] = await client.transact(NB, [op.select("NAT", [], ["external_ip"])]);
  return r?.rows?.length ?? 0;
}

async function claimed(): Promise<number> {
  const { server, client } = await fresh();
  const nat = new NatHandler(client, "ovn-cluster", pino({ level: "silent" }));
  const perSecond = await rate(PODS, (i) => nat.claim(want(i)));
  if ((await natRows(client)) !== PODS) throw new Error("claimed: rows missing");
  client.close();
  await server.stop();
  return perSecond;
}

async function unguarded(): Promise<number> {
  const { server, client } = await fresh();
  const perSecond = await rate(PODS, (i) =>
    client.transact(NB, [
      op.insert(
        "NAT",
        {
          type: "dnat_and_snat",
          external_ip: eip(i),
          logical_ip: podIp(i),
          external_ids: { pod: `bench/pod-${i}` },
        },
        { uuidName: "nat" },
      ),
      op.mutate("Logical_Router", [["name", "==", "ovn-cluster"]], [["nat", "insert", [namedUuid("nat")]]]),
    ]),
  );
  if ((await natRows(client)) !== PODS) throw new Error("unguarded: rows missing");
  client.close();
  await server.stop();
  return perSecond;
}

async function nbctl(): Promise<number> {
  const { server, client } = await fresh();
  const started = process.hrtime.bigint();
  for (let i = 0; i < NBCTL_PODS; i++) {
    await promisify(execFile)("ovn-nbctl", [
      `--db=${server.unixRemote}`,
      "lr-nat-add",
      "ovn-cluster",
      "dnat_and_snat",
      eip(i),
      podIp(i),
    ]);
  }
  const perSecond = NBCTL_PODS / (Number(process.hrtime.bigint() - started) / 1e9);
  if ((await natRows(client)) !== NBCTL_PODS) throw new Error("ovn-nbctl: rows missing");
  client.close();
  await server.stop();
  return perSecond;
}

async function contended(): Promise<{ perSecond: number; won: number; refused: number }> {
  const { server, client } = await fresh();
  const nat = new NatHandler(client, "ovn-cluster", pino({ level: "silent" }));
  let won = 0;
  let refused = 0;
  // Pod i wants EIP i/10: ten pods per address, all in flight together.
  const perSecond = await rate(PODS, (i) =>
    nat.claim(want(i, eip(Math.floor(i / 10)))).then(
      () => won++,
      () => refused++,
    ),
  );
  if ((await natRows(client)) !== won || won !== Math.ceil(PODS / 10))
    throw new Error(`contended: ${won} winners`);
  client.close();
  await server.stop();
  return { perSecond, won, refused };
}

const c = await claimed();
const u = await unguarded();
const n = await nbctl();
const k = await contended();
console.log(
  `nat-bench: claimed ${c.toFixed(0)} rows/s, unguarded ${u.toFixed(0)} rows/s, ovn-nbctl ${n.toFixed(0)} rows/s; ` +
    `contended (10 pods per EIP) ${k.perSecond.toFixed(0)} admissions/s, ${k.won} won, ${k.refused} refused; ` +
    `ratio claimed/unguarded ${(c / u).toFixed(2)}, claimed/ovn-nbctl ${(c / n).toFixed(2)}`,
);
