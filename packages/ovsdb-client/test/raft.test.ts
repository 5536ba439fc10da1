import t, { type Test } from "tap";
import { startRaftCluster, type RaftCluster } from "ovsdb-sandbox";
import { indexBy, op } from "../src/index.js";
import { NB, connect, eventually, once } from "./fixtures.js";

async function cluster(t: Test): Promise<RaftCluster> {
  const c = await startRaftCluster("northbound", { electionTimerMs: 200 });
  t.teardown(() => c.stop());
  return c;
}

t.test("the client settles on the RAFT leader and keeps writing when the leader is killed", async (t) => {
  const nb = await cluster(t);
  const leader = await nb.leader();
  const client = await connect(t, { remote: nb.remote, backoff: { minMs: 50, maxMs: 400 } });
  t.equal(client.remote, nb.members[leader]?.tcpRemote, "connected to the leader");

  const cache = await client.cache(NB, {
    Logical_Router: { columns: ["name"], indexes: { name: indexBy.column("name") } },
  });
  for (let i = 0; i < 20; i++)
    await client.transact(NB, [op.insert("Logical_Router", { name: `before-${i}` })]);

  const disconnected = once(client, "disconnected");
  await nb.members[leader]?.kill();
  await disconnected;
  await once(client, "connected");
  const newLeader = await nb.leader();
  t.not(newLeader, leader, "another member leads");
  t.not(client.remote, nb.members[leader]?.tcpRemote, "moved off the dead member");

  // Writes continue through the new leader; a write may race the election, so retry once on a lost connection.
  for (let i = 0; i < 20; i++) {
    const write = () => client.transact(NB, [op.insert("Logical_Router", { name: `after-${i}` })]);
    await write().catch(async (err: Error) => {
      if (err.name !== "ConnectionClosedError") throw err;
      await client.connect({ timeoutMs: 5000 });
      await write();
    });
  }
  await eventually("cache holds every router", () => cache.table("Logical_Router").size === 40);
  t.ok(
    cache.table("Logical_Router").find("name", "before-0") &&
      cache.table("Logical_Router").find("name", "after-19"),
  );

  // The dead member comes back as a follower; the cluster keeps one copy of everything.
  await nb.members[leader]?.start();
  const [rows] = await client.transact(NB, [op.select("Logical_Router", [], ["name"])]);
  t.equal(rows?.rows?.length, 40);
});

t.test("a client that lands on a follower moves to the leader", async (t) => {
  const nb = await cluster(t);
  const leader = await nb.leader();
  const follower = nb.members.findIndex((_, i) => i !== leader);
  // List the follower first: the client must still end up on the leader.
  const remotes = [follower, ...nb.members.keys()].filter((v, i, a) => a.indexOf(v) === i);
  const client = await connect(t, { remote: remotes.map((i) => nb.members[i]?.tcpRemote).join(",") });
  t.equal(client.remote, nb.members[leader]?.tcpRemote);

  // With leaderOnly off it may stay on a follower, which still serves reads and forwards writes.
  const relaxed = await connect(t, { remote: nb.members[follower]?.tcpRemote as string, leaderOnly: false });
  await relaxed.transact(NB, [op.insert("Logical_Router", { name: "via-follower" })]);
  const [rows] = await client.transact(NB, [
    op.select("Logical_Router", [["name", "==", "via-follower"]], ["name"]),
  ]);
  t.equal(rows?.rows?.length, 1);
});
