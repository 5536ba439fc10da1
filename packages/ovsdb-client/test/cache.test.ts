import { execFile } from "node:child_process";
import { promisify } from "node:util";
import t from "tap";
import { indexBy, op, namedUuid, type DatabaseCache, type Row } from "../src/index.js";
import { NB, connect, eventually, northbound, once } from "./fixtures.js";

const nbctl = (db: string, ...args: string[]) => promisify(execFile)("ovn-nbctl", [`--db=${db}`, ...args]);

const spec = {
  Logical_Switch_Port: {
    columns: ["name", "addresses", "external_ids"],
    indexes: { name: indexBy.column("name"), pod: indexBy.mapKey("pod") },
  },
  NAT: { indexes: { externalIp: indexBy.column("external_ip") } },
  Logical_Router: { columns: ["name", "nat"] },
};

function names(cache: DatabaseCache, table: string): string[] {
  return [...cache.table(table).all()].map((r: Row) => String(r.name)).sort();
}

t.test("monitor updates reach the cache, its indexes and its events", async (t) => {
  const nb = await northbound(t);
  const client = await connect(t, { remote: nb.unixRemote });
  await nbctl(nb.unixRemote, "ls-add", "sw", "--", "lsp-add", "sw", "before");
  const cache = await client.cache(NB, spec);
  t.same(names(cache, "Logical_Switch_Port"), ["before"], "initial content");

  const events: string[] = [];
  cache.on("insert", (table, row) => events.push(`insert ${table} ${String(row.name ?? row.external_ip)}`));
  cache.on("update", (table, row) => events.push(`update ${table} ${String(row.name ?? row.external_ip)}`));
  cache.on("delete", (table, row) => events.push(`delete ${table} ${String(row.name ?? row.external_ip)}`));

  await client.transact(NB, [
    op.insert(
      "Logical_Switch_Port",
      { name: "a.default", external_ids: { pod: "default/a" } },
      { uuidName: "a" },
    ),
    op.mutate("Logical_Switch", [["name", "==", "sw"]], [["ports", "insert", [namedUuid("a")]]]),
    op.insert(
      "NAT",
      { type: "dnat_and_snat", external_ip: "172.56.0.10", logical_ip: "10.16.0.5" },
      { uuidName: "n" },
    ),
    op.insert("Logical_Router", { name: "ovn-cluster", nat: [namedUuid("n")] }),
  ]);
  // Updates caused by our own transaction arrive before its reply.
  const lsps = cache.table("Logical_Switch_Port");
  t.equal(lsps.find("pod", "default/a")?.name, "a.default", "index by external_ids key");
  t.equal(lsps.find("name", "a.default")?.external_ids && true, true, "index by name");
  t.equal(
    cache.table("NAT").find("externalIp", "172.56.0.10")?.logical_ip,
    "10.16.0.5",
    "NAT by external_ip",
  );
  t.same(lsps.find("name", "a.default")?.addresses, [], "columns left at their default are filled in");

  // A modify of a map column is a diff: change one key, add one, keep the rest.
  await client.transact(NB, [
    op.mutate(
      "Logical_Switch_Port",
      [["name", "==", "a.default"]],
      [
        ["external_ids", "delete", ["pod"]],
        ["external_ids", "insert", { pod: "default/a2", owner: "ovn-admission" }],
        ["addresses", "insert", ["0a:00:00:00:00:01 10.16.0.5"]],
      ],
    ),
  ]);
  t.same(lsps.find("name", "a.default")?.external_ids, { pod: "default/a2", owner: "ovn-admission" });
  t.same(lsps.find("name", "a.default")?.addresses, ["0a:00:00:00:00:01 10.16.0.5"]);
  t.same(lsps.lookup("pod", "default/a"), [], "old index key is gone");
  t.equal(lsps.find("pod", "default/a2")?.name, "a.default", "new index key is there");

  await client.transact(NB, [
    op.update("NAT", [["external_ip", "==", "172.56.0.10"]], { external_ip: "172.56.0.11" }),
  ]);
  t.same(cache.table("NAT").lookup("externalIp", "172.56.0.10"), []);
  t.equal(cache.table("NAT").find("externalIp", "172.56.0.11")?.logical_ip, "10.16.0.5");

  await client.transact(NB, [op.delete("Logical_Router", [["name", "==", "ovn-cluster"]])]);
  t.equal(cache.table("NAT").size, 0, "the NAT row is garbage-collected with its router");
  t.equal(cache.table("NAT").indexSize("externalIp"), 0);
  // Within one transaction rows arrive in the server's table order: compare as sets.
  t.same(
    events.sort(),
    [
      "insert Logical_Switch_Port a.default",
      "insert NAT 172.56.0.10",
      "insert Logical_Router ovn-cluster",
      "update Logical_Switch_Port a.default",
      "update NAT 172.56.0.11",
      "delete NAT 172.56.0.11",
      "delete Logical_Router ovn-cluster",
    ].sort(),
  );
  t.throws(() => lsps.lookup("nope", "x"), { message: /has no index "nope" \(indexes: name, pod\)/ });
});

t.test(
  "ovsdb-server killed and restarted: the client reconnects and the cache equals the server",
  async (t) => {
    const nb = await northbound(t);
    const client = await connect(t, { remote: nb.tcpRemote, backoff: { minMs: 50, maxMs: 200 } });
    await nbctl(
      nb.unixRemote,
      "ls-add",
      "sw",
      "--",
      "lsp-add",
      "sw",
      "stays",
      "--",
      "ls-add",
      "sw2",
      "--",
      "lsp-add",
      "sw2",
      "goes",
    );
    const cache = await client.cache(NB, spec);
    t.same(names(cache, "Logical_Switch_Port"), ["goes", "stays"]);
    const states: string[] = [];
    client.on("state", (s) => states.push(s));

    const disconnected = once(client, "disconnected");
    await nb.kill();
    await disconnected;
    t.equal(client.state, "reconnecting");
    // While the client is away, the database changes behind its back (offline, with ovsdb-tool).
    const { stdout } = await promisify(execFile)("ovsdb-tool", [
      "transact",
      nb.dbFile,
      JSON.stringify([
        NB,
        // Deleting the switch garbage-collects its port "goes".
        { op: "delete", table: "Logical_Switch", where: [["name", "==", "sw2"]] },
        { op: "insert", table: "Logical_Switch_Port", row: { name: "new" }, "uuid-name": "n" },
        {
          op: "mutate",
          table: "Logical_Switch",
          where: [["name", "==", "sw"]],
          mutations: [["ports", "insert", ["set", [["named-uuid", "n"]]]]],
        },
      ]),
    ]);
    t.notMatch(stdout, /error/, "the offline change committed");
    const reconnected = once(client, "connected");
    await nb.start();
    await reconnected;
    await eventually("cache resync", () => names(cache, "Logical_Switch_Port").join() === "new,stays");
    t.same(names(cache, "Logical_Switch_Port"), ["new", "stays"], "no stale row, no missed row");
    t.same(cache.table("Logical_Switch_Port").lookup("name", "goes"), [], "index follows the resync");
    t.ok(states.includes("reconnecting") && states.at(-1) === "connected", `states: ${states.join(" > ")}`);

    // The cache keeps following after the reconnect.
    await nbctl(nb.unixRemote, "lsp-add", "sw", "later");
    await eventually(
      "update after reconnect",
      () => cache.table("Logical_Switch_Port").find("name", "later") !== undefined,
    );
    t.pass("updates flow after reconnect");
  },
);

t.test("an optional column's modify is its new value: set, changed and cleared", async (t) => {
  const nb = await northbound(t);
  const client = await connect(t, { remote: nb.unixRemote });
  await nbctl(nb.unixRemote, "ls-add", "sw", "--", "lsp-add", "sw", "p");
  const cache = await client.cache(NB, { Logical_Switch_Port: { columns: ["name", "enabled", "type"] } });
  const enabled = () => [...cache.table("Logical_Switch_Port").all()][0]?.enabled;
  t.equal(enabled(), null, "unset");
  for (const [value, expected] of [
    [false, false],
    [true, true],
    [false, false],
    [null, null],
  ] as const) {
    await client.transact(NB, [op.update("Logical_Switch_Port", [["name", "==", "p"]], { enabled: value })]);
    // Our own transaction's updates arrive before its reply; give it 1 s anyway.
    await eventually(`enabled ${String(expected)}`, () => enabled() === expected, 1_000).catch(
      () => undefined,
    );
    t.equal(enabled(), expected, `enabled set to ${JSON.stringify(value)}`);
  }
});

t.test(
  "connect() called while a reconnect is scheduled: one connection, set diffs applied once",
  async (t) => {
    const nb = await northbound(t);
    const client = await connect(t, { remote: nb.tcpRemote, backoff: { minMs: 300, maxMs: 600 } });
    await nbctl(nb.unixRemote, "ls-add", "sw");
    const cache = await client.cache(NB, { Logical_Switch: { columns: ["name", "ports"] } });
    const disconnected = once(client, "disconnected");
    await nb.kill();
    await disconnected;
    await nb.start();
    // Callers that lost a reply ask to connect while the backoff timer is still pending (a handler's retry).
    const callers = await Promise.allSettled([1, 2, 3].map(() => client.connect({ timeoutMs: 5_000 })));
    t.same(
      callers.map((c) => c.status),
      ["fulfilled", "fulfilled", "fulfilled"],
    );
    // Let the pending backoff timer fire: it must not open a second connection.
    await new Promise((r) => setTimeout(r, 800));
    const [inserted] = await client.transact(NB, [
      op.insert("Logical_Switch_Port", { name: "p1" }, { uuidName: "p" }),
      op.mutate("Logical_Switch", [["name", "==", "sw"]], [["ports", "insert", [namedUuid("p")]]]),
    ]);
    const uuid = String(inserted?.uuid);
    // Two live monitors would toggle the `ports` diff twice: in, then out again.
    await eventually("port in the cached switch", () =>
      ((cache.table("Logical_Switch").all().next().value?.ports as string[] | undefined) ?? []).includes(
        uuid,
      ),
    );
    await new Promise((r) => setTimeout(r, 200));
    t.same(
      [...cache.table("Logical_Switch").all()].map((r) => r.ports),
      [[uuid]],
      "the switch's ports, once",
    );
  },
);

t.test("a set column's index follows each diff: one port in, one out, many at once", async (t) => {
  const nb = await northbound(t);
  const client = await connect(t, { remote: nb.unixRemote });
  await nbctl(nb.unixRemote, "ls-add", "sw", "--", "ls-add", "other");
  const cache = await client.cache(NB, {
    Logical_Switch: {
      columns: ["name", "ports"],
      indexes: { port: indexBy.column("ports"), name: indexBy.column("name") },
    },
  });
  const insert = async (names: string[], into: string) => {
    const replies = await client.transact(NB, [
      ...names.map((n, i) => op.insert("Logical_Switch_Port", { name: n }, { uuidName: `p${i}` })),
      op.mutate(
        "Logical_Switch",
        [["name", "==", into]],
        [["ports", "insert", names.map((_, i) => namedUuid(`p${i}`))]],
      ),
    ]);
    return replies.slice(0, names.length).map((r) => String(r?.uuid));
  };
  const many = await insert(
    Array.from({ length: 40 }, (_, i) => `m${i}`),
    "sw",
  );
  const [one] = await insert(["one"], "sw");
  const holder = (uuid: string) =>
    cache
      .table("Logical_Switch")
      .lookup("port", uuid)
      .map((r) => String(r.name));
  await eventually("ports indexed", () => holder(one as string).length === 1);
  t.same(holder(many[7] as string), ["sw"], "each of a 40-element diff is filed");
  // Move one port to the other switch, then drop 20 at once.
  await client.transact(NB, [
    op.mutate("Logical_Switch", [["name", "==", "sw"]], [["ports", "delete", [one as string]]]),
    op.mutate("Logical_Switch", [["name", "==", "other"]], [["ports", "insert", [one as string]]]),
  ]);
  await eventually("moved", () => holder(one as string)[0] === "other");
  t.same(holder(one as string), ["other"], "one out of sw, into other");
  await client.transact(NB, [
    op.mutate("Logical_Switch", [["name", "==", "sw"]], [["ports", "delete", many.slice(0, 20)]]),
  ]);
  await eventually("dropped", () => holder(many[0] as string).length === 0);
  t.same(holder(many[0] as string), []);
  t.same(holder(many[30] as string), ["sw"]);
  const [sw] = cache.table("Logical_Switch").lookup("name", "sw");
  t.equal((sw?.ports as string[]).length, 20, "the row's set agrees with its index");
  t.equal(cache.table("Logical_Switch").indexSize("port"), 21, "20 ports on sw, one on other: nothing stale");
});
