import t from "tap";
import { AlreadyTakenError, op, namedUuid, OvsdbClient } from "../src/index.js";
import { NB, connect, northbound } from "./fixtures.js";

/** Insert a NAT row for `ip` on the router, only if no NAT row holds that external_ip. */
function natFor(ip: string, pod: string) {
  return [
    op.insert(
      "NAT",
      { type: "dnat_and_snat", external_ip: ip, logical_ip: "10.16.0.9", external_ids: { pod } },
      { uuidName: "nat" },
    ),
    op.mutate("Logical_Router", [["name", "==", "ovn-cluster"]], [["nat", "insert", [namedUuid("nat")]]]),
  ];
}

t.test("two racing transactions want one address: exactly one wins, every time", async (t) => {
  const nb = await northbound(t);
  // Two connections, as two replicas would have.
  const a = await connect(t, { remote: nb.unixRemote });
  const b = await connect(t, { remote: nb.tcpRemote });
  await a.transact(NB, [op.insert("Logical_Router", { name: "ovn-cluster" })]);
  const rounds = 200;
  let aWins = 0;
  for (let i = 0; i < rounds; i++) {
    const ip = `172.56.${Math.floor(i / 250)}.${(i % 250) + 1}`;
    const claim = { table: "NAT", values: { external_ip: ip } };
    const results = await Promise.allSettled([
      a.claim(NB, [claim], natFor(ip, "ns/pod-a")),
      b.claim(NB, [claim], natFor(ip, "ns/pod-b")),
    ]);
    const won = results.filter((r) => r.status === "fulfilled").length;
    const lost = results.filter((r) => r.status === "rejected" && r.reason instanceof AlreadyTakenError);
    if (won !== 1 || lost.length !== 1) t.fail(`round ${i}: ${won} winners, ${lost.length} typed losers`);
    if (results[0]?.status === "fulfilled") aWins++;
  }
  const [nat] = await a.transact(NB, [op.select("NAT", [], ["external_ip"])]);
  t.equal(nat?.rows?.length, rounds, "one NAT row per address");
  t.equal(new Set(nat?.rows?.map((r) => r.external_ip)).size, rounds, "no address twice");
  t.comment(`client a won ${aWins} of ${rounds} rounds`);
});

t.test("a lost claim names the table and value, and writes nothing", async (t) => {
  const nb = await northbound(t);
  const client: OvsdbClient = await connect(t, { remote: nb.unixRemote });
  await client.transact(NB, [op.insert("Logical_Router", { name: "ovn-cluster" })]);
  await client.claim(
    NB,
    [{ table: "NAT", values: { external_ip: "172.56.0.1" } }],
    natFor("172.56.0.1", "ns/a"),
  );
  const err = await client
    .claim(NB, [{ table: "NAT", values: { external_ip: "172.56.0.1" } }], natFor("172.56.0.1", "ns/b"))
    .catch((e: unknown) => e);
  t.ok(err instanceof AlreadyTakenError);
  t.equal((err as Error).message, 'NAT already has a row with external_ip="172.56.0.1"');
  const [nat] = await client.transact(NB, [op.select("NAT", [], ["external_ids"])]);
  t.same(nat?.rows, [{ external_ids: { pod: "ns/a" } }]);
});

t.test("a claim's where lets the holder claim again, and still stops everyone else", async (t) => {
  const nb = await northbound(t);
  const client = await connect(t, { remote: nb.unixRemote });
  await client.transact(NB, [op.insert("Logical_Router", { name: "ovn-cluster" })]);
  const claimBy = (pod: string) => ({
    table: "NAT",
    values: { external_ip: "172.56.0.7" },
    where: [["external_ids", "excludes", { pod }] as ["external_ids", "excludes", Record<string, string>]],
  });
  await client.claim(NB, [claimBy("ns/a")], natFor("172.56.0.7", "ns/a"));
  await client.claim(NB, [claimBy("ns/a")], []);
  const err = await client
    .claim(NB, [claimBy("ns/b")], natFor("172.56.0.7", "ns/b"))
    .catch((e: unknown) => e);
  t.ok(err instanceof AlreadyTakenError, "another pod's claim is refused");
  const [nat] = await client.transact(NB, [op.select("NAT", [], ["external_ids"])]);
  t.same(nat?.rows, [{ external_ids: { pod: "ns/a" } }]);
});
