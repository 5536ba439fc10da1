/**
 * A monitor's reply and the update right behind it can arrive in one read:
 * the update must still be applied after the snapshot, never before it (where
 * the snapshot would overwrite it and the row be lost from the cache for good).
 * A relay between client and a real ovsdb-server holds the server's bytes
 * after the monitor reply until another client's insert has been sent too,
 * then hands both over in one chunk.
 */
import { mkdtempSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import t from "tap";
import { op } from "../src/index.js";
import { NB, connect, northbound } from "./fixtures.js";

/** Relays a unix socket to `target`; `onReply` runs at the server's first answer to a monitor request, whose bytes wait until it resolves. */
function coalescingRelay(
  target: string,
  onReply: () => Promise<void>,
): Promise<{ path: string; close(): void }> {
  const socketPath = path.join(mkdtempSync(path.join(os.tmpdir(), "relay-")), "relay.sock");
  const server = net.createServer((client) => {
    const upstream = net.createConnection(target);
    let armed = false;
    let held: Buffer[] | undefined;
    client.on("data", (chunk) => {
      if (/"monitor_cond/.test(chunk.toString())) armed = true;
      upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      if (held) return void held.push(chunk);
      if (!armed) return void client.write(chunk);
      armed = false;
      held = [chunk];
      void onReply()
        .then(() => new Promise((r) => setTimeout(r, 200)))
        .then(() => {
          client.write(Buffer.concat(held as Buffer[]));
          held = undefined;
        });
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  return new Promise((resolve) =>
    server.listen(socketPath, () => resolve({ path: socketPath, close: () => server.close() })),
  );
}

t.test("an update that arrives with the monitor's reply is applied after its snapshot", async (t) => {
  const nb = await northbound(t);
  const writer = await connect(t, { remote: nb.unixRemote });
  await writer.transact(NB, [op.insert("Logical_Switch", { name: "before" })]);
  const target = nb.unixRemote.replace(/^unix:/, "");
  const relay = await coalescingRelay(target, async () => {
    await writer.transact(NB, [op.insert("Logical_Switch", { name: "right-after" })]);
  });
  t.teardown(() => relay.close());
  const client = await connect(t, { remote: `unix:${relay.path}` });
  const cache = await client.cache(NB, { Logical_Switch: { columns: ["name"] } });
  t.same(
    [...cache.table("Logical_Switch").all()].map((r) => r.name).sort(),
    ["before", "right-after"],
    "the snapshot's row and the one inserted right after it",
  );
});
