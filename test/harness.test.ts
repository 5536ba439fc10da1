import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import t from "tap";
import { OvsdbClient, op } from "ovsdb-client";
import { nodesFor, northboundFor, raftNorthboundFor } from "./harness/index.js";

const run = promisify(execFile);

t.test("several servers at once never clash on sockets or ports", async (t) => {
  const [a, b] = await Promise.all([northboundFor(t), northboundFor(t)]);
  const nodes = await nodesFor(t, ["node-1", "node-2", "node-3"]);
  const sockets = [a, b, ...nodes.map((n) => n.ovs)].map((s) => s.socketPath);
  const ports = [a, b, ...nodes.map((n) => n.ovs)].map((s) => s.tcpPort);
  t.equal(new Set(sockets).size, 5, "distinct unix sockets");
  t.equal(new Set(ports).size, 5, "distinct TCP ports");
  // Each node database has its Open_vSwitch row with the node's identity.
  for (const node of nodes) {
    const { stdout } = await run("ovs-vsctl", [
      `--db=${node.ovs.tcpRemote}`,
      "--no-wait",
      "get",
      "Open_vSwitch",
      ".",
      "external_ids:system-id",
    ]);
    t.equal(stdout.trim(), `chassis-${node.name}`);
  }
});

t.test("a RAFT Northbound has three members and one leader", async (t) => {
  const cluster = await raftNorthboundFor(t);
  t.equal(cluster.members.length, 3);
  t.equal(cluster.remote.split(",").length, 3);
  const leader = await cluster.leader();
  const status = await cluster.members[leader]?.appctl("cluster/status", "OVN_Northbound");
  t.match(status, /Role: leader/);
  const client = new OvsdbClient({ remote: cluster.remote, database: "OVN_Northbound" });
  t.teardown(() => client.close());
  await client.connect({ timeoutMs: 5000 });
  const [r] = await client.transact("OVN_Northbound", [op.insert("Logical_Router", { name: "ovn-cluster" })]);
  t.ok(r?.uuid);
});

t.test("servers are killed and their directories removed when a test process dies", async (t) => {
  // A child process starts a server and then fails with an uncaught error.
  const script = `
    import { startNorthbound } from "ovsdb-sandbox";
    const nb = await startNorthbound();
    console.log(JSON.stringify({ pid: nb.pid, dir: nb.dir }));
    throw new Error("test failed on purpose");
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { cwd: process.cwd() });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  t.not(code, 0, "the child failed");
  const { pid, dir } = JSON.parse(out) as { pid: number; dir: string };
  await new Promise((r) => setTimeout(r, 300));
  const { stdout: stat } = await run("ps", ["-o", "stat=", "-p", String(pid)]).catch(() => ({ stdout: "" }));
  t.ok(
    stat.trim() === "" || stat.trim().startsWith("Z"),
    `ovsdb-server ${pid} is gone (stat "${stat.trim()}")`,
  );
  t.notOk(existsSync(dir), "its directory is removed");
});
