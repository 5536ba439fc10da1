/** The NAT handler against a real OVN_Northbound. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { pino } from "pino";
import t, { type Test } from "tap";
import { op, OvsdbClient } from "ovsdb-client";
import { IntentRefused } from "../../handlers/intents.js";
import { NatHandler } from "../../handlers/nat.js";
import type { NatWant } from "../../webhooks/gateway.js";
import { clusterRouterOn, northboundFor, type OvsdbServer } from "../harness/index.js";

const NB = "OVN_Northbound";
const log = pino({ level: "silent" });

const nbctl = async (nb: OvsdbServer, ...args: string[]): Promise<string> =>
  (await promisify(execFile)("ovn-nbctl", [`--db=${nb.unixRemote}`, ...args])).stdout.trim();

/** `ovn-nbctl lr-nat-list` rows as "TYPE EXTERNAL LOGICAL [PORT MAC]", sorted. */
async function natList(nb: OvsdbServer): Promise<string[]> {
  const text = await nbctl(nb, "lr-nat-list", "ovn-cluster");
  return text
    .split("\n")
    .slice(1)
    .filter(Boolean)
    .map((l) => l.trim().split(/\s+/).join(" "))
    .sort();
}

async function setup(t: Test) {
  const nb = await northboundFor(t);
  const northbound = await clusterRouterOn(t, nb.unixRemote);
  const programmed: string[] = [];
  const handler = new NatHandler(northbound, "ovn-cluster", log, (want) => programmed.push(want.pod));
  return { nb, northbound, handler, programmed };
}

const eip = (pod: string, external: string, logical: string): NatWant => ({
  pod,
  row: { type: "dnat_and_snat", external_ip: external, logical_ip: logical },
});
const snat = (pod: string, external: string, logical: string): NatWant => ({
  pod,
  row: { type: "snat", external_ip: external, logical_ip: logical },
});

t.test("written, unchanged, moved, released: one row per pod, as lr-nat-list shows it", async (t) => {
  const { nb, handler, programmed } = await setup(t);
  t.equal(await handler.ensure(eip("shop/a", "172.56.0.233", "10.16.0.9")), "written");
  t.same(await natList(nb), ["dnat_and_snat 172.56.0.233 10.16.0.9"]);
  t.equal(await handler.ensure(eip("shop/a", "172.56.0.233", "10.16.0.9")), "unchanged");
  t.equal(await handler.ensure(eip("shop/a", "172.56.0.221", "10.16.0.9")), "written");
  t.same(await natList(nb), ["dnat_and_snat 172.56.0.221 10.16.0.9"], "moved, not added");
  t.equal(await handler.ensure(snat("shop/b", "172.56.0.200", "10.16.0.10")), "written");
  t.equal(await handler.ensure(snat("shop/c", "172.56.0.200", "10.16.0.11")), "written", "SNAT is shared");
  t.equal(await handler.ensure({ pod: "shop/a" }), "released");
  t.equal(await handler.ensure({ pod: "shop/a" }), "unchanged");
  t.same(await natList(nb), ["snat 172.56.0.200 10.16.0.10", "snat 172.56.0.200 10.16.0.11"]);
  t.same(programmed, ["shop/a", "shop/a", "shop/a", "shop/b", "shop/c"], "each row in place is reported");
  t.equal(
    (await nbctl(nb, "--bare", "--columns=_uuid", "list", "NAT")).split(/\n+/).length,
    2,
    "no orphan rows",
  );
});

t.test("distributed EIP: logical_port and external_mac", async (t) => {
  const { nb, handler } = await setup(t);
  await handler.ensure({
    pod: "shop/a",
    row: {
      type: "dnat_and_snat",
      external_ip: "172.56.0.233",
      logical_ip: "10.16.0.9",
      logical_port: "a.shop",
      external_mac: "0a:58:0a:10:00:09",
    },
  });
  t.same(await natList(nb), ["dnat_and_snat 172.56.0.233 10.16.0.9 0a:58:0a:10:00:09 a.shop"]);
});

t.test("a taken address is refused with its holder named; nothing is written", async (t) => {
  const { nb, handler } = await setup(t);
  await handler.ensure(eip("shop/a", "172.56.0.233", "10.16.0.9"));
  await handler.ensure(snat("shop/s", "172.56.0.200", "10.16.0.20"));
  const cases: Array<[NatWant, string]> = [
    [
      eip("shop/b", "172.56.0.233", "10.16.0.10"),
      'metadata.annotations["ovn.kubernetes.io/eip"]: 172.56.0.233 cannot be this pod\'s EIP: it is already the EIP of pod shop/a',
    ],
    [
      eip("shop/b", "172.56.0.200", "10.16.0.10"),
      'metadata.annotations["ovn.kubernetes.io/eip"]: 172.56.0.200 cannot be this pod\'s EIP: it is already the SNAT address of pod shop/s',
    ],
    [
      snat("shop/b", "172.56.0.233", "10.16.0.10"),
      'metadata.annotations["ovn.kubernetes.io/snat"]: 172.56.0.233 cannot be this pod\'s SNAT address: it is already the EIP of pod shop/a',
    ],
  ];
  for (const [want, message] of cases) {
    const err = await handler.ensure(want).catch((e: unknown) => e);
    t.ok(err instanceof IntentRefused, `${want.row?.external_ip}`);
    t.equal((err as Error).message, message);
  }
  await nbctl(nb, "lr-nat-add", "ovn-cluster", "dnat_and_snat", "172.56.0.50", "10.16.0.50");
  const foreign = await handler.ensure(eip("shop/b", "172.56.0.50", "10.16.0.10")).catch((e: unknown) => e);
  t.equal(
    (foreign as Error).message,
    'metadata.annotations["ovn.kubernetes.io/eip"]: 172.56.0.50 cannot be this pod\'s EIP: it is already the EIP of a NAT row not made by ovn-admission (dnat_and_snat 172.56.0.50 -> 10.16.0.50)',
  );
  t.same(await natList(nb), [
    "dnat_and_snat 172.56.0.233 10.16.0.9",
    "dnat_and_snat 172.56.0.50 10.16.0.50",
    "snat 172.56.0.200 10.16.0.20",
  ]);
  const moved = await handler.ensure(eip("shop/a", "172.56.0.50", "10.16.0.9")).catch((e: unknown) => e);
  t.ok(moved instanceof IntentRefused, "a refused move keeps the old row");
  t.match(await natList(nb), ["dnat_and_snat 172.56.0.233 10.16.0.9"]);
});

t.test("no cluster router: refused with the router named", async (t) => {
  const { handler, northbound } = await setup(t);
  await northbound.transact(NB, [op.delete("Logical_Router", [])]);
  await t.rejects(handler.ensure(eip("shop/a", "172.56.0.233", "10.16.0.9")), {
    name: "IntentRefused",
    message:
      "logical router ovn-cluster does not exist in OVN Northbound (made by the CNI; see --cluster-router)",
  });
});

t.test("the same pod through two writers at once ends with one row", async (t) => {
  const { nb, northbound } = await setup(t);
  const other = new OvsdbClient({ remote: nb.tcpRemote, database: NB });
  await other.connect();
  t.teardown(() => other.close());
  const a = new NatHandler(northbound, "ovn-cluster", log);
  const b = new NatHandler(other, "ovn-cluster", log);
  for (let i = 0; i < 20; i++) {
    const want = eip(`shop/p${i}`, `172.56.1.${i + 1}`, `10.16.1.${i + 1}`);
    await Promise.all([a.ensure(want), b.ensure(want)]);
  }
  t.equal((await natList(nb)).length, 20, "one row per pod, never two");
});

t.test("reconcile: missing rows come back, rows of gone pods go after the grace", async (t) => {
  const { nb, handler } = await setup(t);
  await handler.ensure(eip("shop/kept", "172.56.0.1", "10.16.0.1"));
  await handler.ensure(eip("shop/gone", "172.56.0.2", "10.16.0.2"));
  await handler.ensure(eip("shop/young", "172.56.0.3", "10.16.0.3"));
  // shop/young's row was just written: within the grace it stays although no pod asks for it.
  await nbctl(
    nb,
    "set",
    "NAT",
    (await nbctl(nb, "--bare", "--columns=_uuid", "find", "NAT", "external_ip=172.56.0.2")).trim(),
    `external_ids:"ovn-admission.io/since"=0`,
  );
  const wanted = [eip("shop/kept", "172.56.0.1", "10.16.0.1"), eip("shop/lost", "172.56.0.4", "10.16.0.4")];
  const result = await handler.reconcile(wanted, 60_000);
  t.same(result.written, ["shop/lost"]);
  t.same(result.released, ["shop/gone"]);
  t.same(
    result.programmed.map((w) => w.pod),
    ["shop/kept"],
  );
  t.same(await natList(nb), [
    "dnat_and_snat 172.56.0.1 10.16.0.1",
    "dnat_and_snat 172.56.0.3 10.16.0.3",
    "dnat_and_snat 172.56.0.4 10.16.0.4",
  ]);
  const stale = await handler.reconcile([...wanted, { pod: "shop/young" }], 60_000);
  t.same(stale.released, [], "a young row is not released for a view that lags behind");
  const later = await handler.reconcile(wanted, 0);
  t.same(later.released, ["shop/young"], "past the grace");
  const conflict = await handler.reconcile([...wanted, eip("shop/twin", "172.56.0.4", "10.16.0.9")], 0);
  t.match(conflict.conflicts, [/^shop\/twin: .*already the EIP of pod shop\/lost/]);
});
