import t from "tap";
import {
  ConnectionClosedError,
  ConstraintViolationError,
  op,
  RequestTimeoutError,
  RpcError,
  SchemaError,
  SyntaxViolationError,
  TimedOutError,
  TransactionError,
  namedUuid,
  ReferentialIntegrityError,
  transactionError,
} from "../src/index.js";
import { NB, connect, northbound, openVswitch } from "./fixtures.js";

t.test("list_dbs, get_schema and echo", async (t) => {
  const nb = await northbound(t);
  const client = await connect(t, { remote: nb.unixRemote });
  t.same((await client.listDbs()).sort(), ["OVN_Northbound", "_Server"]);
  const schema = await client.getSchema(NB);
  t.equal(schema.name, NB);
  t.equal(schema.tables.get("NAT")?.columns.get("type")?.kind, "scalar");
  t.same(await client.echo("hello", 1), ["hello", 1]);
});

t.test("a server that does not serve the database is named with what it serves", async (t) => {
  const vswitch = await openVswitch(t);
  await t.rejects(connect(t, { remote: vswitch.unixRemote, reconnect: false }), {
    message: /does not serve database OVN_Northbound \(it serves Open_vSwitch\)/,
  });
});

t.test(
  "connecting as the server starts finds the database (its _Server row comes a loop later)",
  async (t) => {
    // Ten fresh servers, each dialled the moment it answers: no start is refused.
    for (let i = 0; i < 10; i++) {
      const nb = await northbound(t);
      const client = await connect(t, { remote: nb.tcpRemote, reconnect: false });
      t.equal(client.state, "connected");
    }
  },
);

t.test("every operation type against a real OVN_Northbound", async (t) => {
  const nb = await northbound(t);
  const client = await connect(t, { remote: nb.tcpRemote });
  const [port, sw] = await client
    .transact(NB, [
      op.comment("ovsdb-client test: insert"),
      op.insert(
        "Logical_Switch_Port",
        { name: "a", addresses: ["0a:00:00:00:00:01 10.0.0.2"] },
        { uuidName: "a" },
      ),
      op.insert("Logical_Switch", { name: "sw", ports: [namedUuid("a")] }),
    ])
    .then((r) => r.slice(1));
  t.match(port, { uuid: /^[0-9a-f-]{36}$/ });
  t.match(sw, { uuid: /^[0-9a-f-]{36}$/ });

  const [selected] = await client.transact(NB, [
    op.select("Logical_Switch", [["name", "==", "sw"]], ["name", "ports"]),
  ]);
  t.same(selected?.rows, [{ name: "sw", ports: [port?.uuid] }]);

  const [updated] = await client.transact(NB, [
    op.update("Logical_Switch_Port", [["name", "==", "a"]], { external_ids: { pod: "default/a" } }),
  ]);
  t.equal(updated?.count, 1);

  const [mutated] = await client.transact(NB, [
    op.mutate(
      "Logical_Switch_Port",
      [["name", "==", "a"]],
      [
        ["external_ids", "insert", { owner: "ovn-admission" }],
        ["addresses", "insert", ["0a:00:00:00:00:02 10.0.0.3"]],
      ],
    ),
  ]);
  t.equal(mutated?.count, 1);

  const [waited, reread] = await client.transact(NB, [
    op.wait(
      "Logical_Switch_Port",
      [["name", "==", "a"]],
      ["external_ids"],
      "==",
      [{ external_ids: { pod: "default/a", owner: "ovn-admission" } }],
      0,
    ),
    op.select(
      "Logical_Switch_Port",
      [["external_ids", "includes", { owner: "ovn-admission" }]],
      ["addresses"],
    ),
  ]);
  t.same(waited, {});
  t.same(reread?.rows, [{ addresses: ["0a:00:00:00:00:01 10.0.0.2", "0a:00:00:00:00:02 10.0.0.3"] }]);

  // A port nobody references is garbage-collected: delete the switch and its ports go with it.
  const [deleted] = await client.transact(NB, [op.delete("Logical_Switch", [["name", "==", "sw"]])]);
  t.equal(deleted?.count, 1);
  const [gone] = await client.transact(NB, [op.select("Logical_Switch_Port", [])]);
  t.same(gone?.rows, []);

  await t.rejects(client.transact(NB, [op.insert("Logical_Router", { name: "r" }), op.abort()]), {
    name: "AbortedError",
    index: 1,
  });
  const [routers] = await client.transact(NB, [op.select("Logical_Router", [])]);
  t.same(routers?.rows, [], "an aborted transaction commits nothing");
  t.same(await client.transact(NB, [op.commit(false)]), [{}]);
  await t.rejects(client.transact(NB, [op.assert("no_such_lock")]), { name: "NotOwnerError", index: 0 });
});

t.test("a failed transaction raises a typed error with index, error and details", async (t) => {
  const nb = await northbound(t);
  const client = await connect(t, { remote: nb.unixRemote });
  // Address_Set has an index on name: the second insert violates it at commit time.
  const err = await client
    .transact(NB, [op.insert("Address_Set", { name: "as1" }), op.insert("Address_Set", { name: "as1" })])
    .catch((e: unknown) => e);
  t.ok(err instanceof ConstraintViolationError, "ConstraintViolationError");
  t.ok(err instanceof TransactionError);
  t.match(err, { index: 2, error: "constraint violation", details: /Address_Set.*as1/, database: NB });
  t.match((err as Error).message, /at operation 2 \(commit\): constraint violation/);

  // A row referring to a row that does not exist.
  const ref = await client
    .transact(NB, [
      op.insert("Logical_Switch", { name: "sw", ports: ["6a8b1bd4-0000-4000-8000-000000000001"] }),
    ])
    .catch((e: unknown) => e);
  t.ok(ref instanceof ReferentialIntegrityError, `ReferentialIntegrityError, got ${String(ref)}`);

  // The schema catches a bad column before the server sees it...
  await t.rejects(client.transact(NB, [op.insert("NAT", { external_ipp: "1.2.3.4" })]), {
    name: "SchemaError",
    table: "NAT",
    column: "external_ipp",
  });
  // ...and a server-side syntax error (sent raw, bypassing the schema) is typed too.
  const raw = (await client.request("transact", [
    NB,
    { op: "insert", table: "NAT", row: { external_ipp: "1.2.3.4" } },
  ])) as Array<{ error?: string }>;
  t.match(raw[0], { error: "unknown column" });
  const typed = transactionError(NB, 0, "unknown column", undefined, undefined);
  t.ok(typed instanceof SyntaxViolationError && typed instanceof TransactionError);
  t.ok(new SchemaError("x", "T", "c").message.startsWith("T.c:"));

  await t.rejects(client.transact("No_Such_Db", []), RpcError);
});

t.test("a wait with timeout 0 fails at once with TimedOutError; nothing commits", async (t) => {
  const nb = await northbound(t);
  const client = await connect(t, { remote: nb.unixRemote });
  await client.transact(NB, [op.insert("Logical_Router", { name: "r1" })]);
  const err = await client
    .transact(NB, [
      op.wait("Logical_Router", [["name", "==", "r1"]], ["name"], "==", [], 0),
      op.insert("Logical_Router", { name: "r2" }),
    ])
    .catch((e: unknown) => e);
  t.ok(err instanceof TimedOutError);
  t.match(err, { index: 0, error: "timed out" });
  const [rows] = await client.transact(NB, [op.select("Logical_Router", [], ["name"])]);
  t.same(rows?.rows, [{ name: "r1" }]);
});

t.test("cancel: an aborted blocking transaction fails at once and never commits", async (t) => {
  const nb = await northbound(t);
  const client = await connect(t, { remote: nb.unixRemote });
  const controller = new AbortController();
  // No timeout: the wait blocks until a router named "later" exists, then "after" would be inserted.
  const blocked = client.transact(
    NB,
    [
      op.wait("Logical_Router", [["name", "==", "later"]], ["name"], "!=", []),
      op.insert("Logical_Router", { name: "after" }),
    ],
    { signal: controller.signal, timeoutMs: 0 },
  );
  setTimeout(() => controller.abort(), 100);
  await t.rejects(blocked, { name: "CanceledError", message: /transact canceled by the caller/ });
  await client.transact(NB, [op.insert("Logical_Router", { name: "later" })]);
  await new Promise((r) => setTimeout(r, 200));
  const [rows] = await client.transact(NB, [op.select("Logical_Router", [], ["name"])]);
  t.same(rows?.rows, [{ name: "later" }], "the canceled transaction did not commit when its wait came true");
});

t.test("a request times out with a clear error instead of hanging", async (t) => {
  const nb = await northbound(t);
  const client = await connect(t, { remote: nb.unixRemote, requestTimeoutMs: 300, probeIntervalMs: 0 });
  await client.getSchema(NB);
  nb.freeze();
  t.teardown(() => nb.thaw());
  const started = Date.now();
  const err = await client.transact(NB, [op.select("Logical_Router", [])]).catch((e: unknown) => e);
  t.ok(err instanceof RequestTimeoutError);
  t.match((err as Error).message, /transact got no reply within 300 ms from unix:/);
  t.ok(Date.now() - started < 2000, "failed promptly");
});

t.test("pending requests fail promptly when the connection drops", async (t) => {
  const nb = await northbound(t);
  const client = await connect(t, { remote: nb.unixRemote, reconnect: false });
  const pending = [1, 2, 3].map(() =>
    client.transact(NB, [op.wait("Logical_Router", [["name", "==", "never"]], ["name"], "!=", [])], {
      timeoutMs: 0,
    }),
  );
  const started = Date.now();
  setTimeout(() => void nb.kill(), 100);
  for (const p of pending) await t.rejects(p, ConnectionClosedError);
  t.ok(Date.now() - started < 3000, `failed within ${Date.now() - started} ms`);
  t.equal(client.state, "closed");
  await t.rejects(client.echo(), { name: "ConnectionClosedError", message: /not connected/ });
});
