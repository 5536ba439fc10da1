import t from "tap";
import { op } from "../src/index.js";
import { NB, connect, once } from "./fixtures.js";
import { northbound } from "./fixtures.js";

t.test("a peer that stops answering echo is detected and dropped", async (t) => {
  const nb = await northbound(t);
  const client = await connect(t, { remote: nb.tcpRemote, probeIntervalMs: 300, reconnect: false });
  nb.freeze();
  t.teardown(() => nb.thaw());
  const started = Date.now();
  const [error] = await once<[Error]>(client, "disconnected");
  const took = Date.now() - started;
  t.match(error.message, /no reply to inactivity probe within 300 ms: peer is dead/);
  t.ok(took >= 300 && took < 2000, `detected after ${took} ms`);
});

t.test("the server's own echo probes are answered: an idle TCP connection survives", async (t) => {
  const nb = await northbound(t);
  // ovsdb-server sends echo after 5 s idle and drops a client that has not answered by 10 s.
  const client = await connect(t, { remote: nb.tcpRemote, probeIntervalMs: 0 });
  let dropped = false;
  client.on("disconnected", () => (dropped = true));
  await new Promise((r) => setTimeout(r, 11_500));
  t.equal(dropped, false, "still connected after 11.5 s idle");
  const [rows] = await client.transact(NB, [op.select("Logical_Router", [])]);
  t.same(rows?.rows, []);
});
