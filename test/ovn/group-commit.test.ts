/** Group commit against a real OVN_Northbound: each claim's outcome is what it would be alone. */
import t from "tap";
import { namedUuid, op, OvsdbClient, unlessTaken } from "ovsdb-client";
import { ClaimDeferred, GroupCommit, type GroupMember } from "../../ovn/group-commit.js";
import { northboundFor } from "../harness/index.js";

const NB = "OVN_Northbound";

/** A claim of a logical switch name: the switch is inserted unless one of that name exists. */
function claimSwitch(name: string, keys = [name]): GroupMember & { explained: number[] } {
  const explained: number[] = [];
  return {
    keys,
    explained,
    build: (uuidName) => ({
      waits: [unlessTaken({ table: "Logical_Switch", values: { name } })],
      writes: [op.insert("Logical_Switch", { name }, { uuidName: `ls_${uuidName}` })],
    }),
    explain: async (index) => {
      explained.push(index);
      return new Error(`${name} is taken`);
    },
  };
}

t.test("claims in flight together share one transaction; a failed wait refuses only its claim", async (t) => {
  const nb = await northboundFor(t);
  const client = new OvsdbClient({ remote: nb.unixRemote, database: NB });
  t.teardown(() => client.close());
  await client.connect({ timeoutMs: 5_000 });
  await client.transact(NB, [op.insert("Logical_Switch", { name: "taken" })]);
  let transactions = 0;
  const transact = client.transact.bind(client);
  client.transact = ((...args: Parameters<typeof client.transact>) => {
    transactions++;
    return transact(...args);
  }) as typeof client.transact;
  const group = new GroupCommit(client, NB);
  const members = ["a", "b", "taken", "c", "d"].map((n) => claimSwitch(n));
  const outcomes = await Promise.allSettled(members.map((m) => group.submit(m)));
  t.same(
    outcomes.map((o) => (o.status === "fulfilled" ? "ok" : (o.reason as Error).message)),
    ["ok", "ok", "taken is taken", "ok", "ok"],
  );
  t.same(members[2]?.explained, [0], "the loser's own wait, by its own index");
  // The first went alone (nothing in flight); the next four together, then again without the loser.
  t.equal(transactions, 3, "three transactions for five claims");
  const [switches] = await client.transact(NB, [op.select("Logical_Switch", [], ["name"])]);
  t.same((switches?.rows ?? []).map((r) => String(r.name)).sort(), ["a", "b", "c", "d", "taken"]);
});

t.test("two claims of one key never share a transaction: the later is deferred to look again", async (t) => {
  const nb = await northboundFor(t);
  const client = new OvsdbClient({ remote: nb.unixRemote, database: NB });
  t.teardown(() => client.close());
  await client.connect({ timeoutMs: 5_000 });
  const group = new GroupCommit(client, NB);
  const first = group.submit(claimSwitch("x"));
  const outcomes = await Promise.allSettled([
    first,
    group.submit(claimSwitch("y")),
    group.submit(claimSwitch("y")),
    group.submit(claimSwitch("z")),
  ]);
  t.equal(outcomes[0]?.status, "fulfilled");
  t.equal(outcomes[1]?.status, "fulfilled");
  t.ok(
    outcomes[2]?.status === "rejected" && outcomes[2].reason instanceof ClaimDeferred,
    "the second y is deferred",
  );
  t.equal(outcomes[3]?.status, "fulfilled");
});

t.test("a lost connection rejects every claim of the batch with it (each retries and reads)", async (t) => {
  const nb = await northboundFor(t);
  const client = new OvsdbClient({ remote: nb.unixRemote, database: NB, reconnect: false });
  t.teardown(() => client.close());
  await client.connect({ timeoutMs: 5_000 });
  const group = new GroupCommit(client, NB);
  const members = ["p", "q", "r"].map((n) => ({
    ...claimSwitch(n),
    build: (name: string) => ({
      waits: [op.wait("Logical_Switch", [["name", "==", n]], ["name"], "==", [], 0)],
      writes: [
        op.insert("Logical_Switch_Port", { name: `${n}-port` }, { uuidName: `lsp_${name}` }),
        op.insert("Logical_Switch", { name: n, ports: [namedUuid(`lsp_${name}`)] }),
      ],
    }),
  }));
  const pending = members.map((m) => group.submit(m));
  client.dropConnection("test");
  const outcomes = await Promise.allSettled(pending);
  t.same(
    outcomes.map((o) => o.status),
    ["rejected", "rejected", "rejected"],
    "no claim is told it committed when its reply was lost",
  );
  t.ok(
    outcomes.some(
      (o) => o.status === "rejected" && /connection|closed|dropped/i.test((o.reason as Error).message),
    ),
    `told: ${outcomes.map((o) => (o.status === "rejected" ? (o.reason as Error).message : "ok")).join(" | ")}`,
  );
});
