import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import t from "tap";
import { scratchDir } from "./harness/index.js";

const entry = path.resolve("dist/bin/ovn-admission.js");

function startService(args: string[]) {
  const child = spawn(process.execPath, [entry, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const lines: Array<Record<string, unknown>> = [];
  let stderr = "";
  let buffered = "";
  child.stdout.on("data", (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split("\n");
    buffered = parts.pop() ?? "";
    for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as Record<string, unknown>);
  });
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return { child, lines, exited, stderr: () => stderr };
}

async function until(what: string, ok: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

t.before(() => {
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run npm run build first (npm test does)`);
});

t.test("on embedded defaults it starts a local Northbound, says so, and stops it on SIGTERM", async (t) => {
  const stateDir = scratchDir("oa-state-");
  const service = startService(["--state-dir", stateDir]);
  t.teardown(() => service.child.kill("SIGKILL"));
  await until("ready", () => service.lines.some((l) => l.event === "ready"));
  const started = service.lines.find((l) => l.event === "local-northbound-started");
  t.match(started, { remote: `unix:${stateDir}/nb.sock`, dbFile: `${stateDir}/nb.db` });
  t.match(
    service.lines.find((l) => l.event === "ready"),
    { schemaVersion: /^\d+\.\d+\.\d+$/ },
  );
  const ovsdbPid = started?.pid as number;
  service.child.kill("SIGTERM");
  t.equal(await service.exited, 0, "clean exit");
  t.ok(service.lines.some((l) => l.event === "stopped"));
  t.throws(() => process.kill(ovsdbPid, 0), "the local ovsdb-server is stopped");
  t.ok(existsSync(path.join(stateDir, "nb.db")), "the database file is kept for the next start");
});

t.test("bad configuration is refused with the option named", async (t) => {
  const service = startService(["--nb-remote", "http://nb:6641"]);
  t.equal(await service.exited, 2);
  t.match(
    service.stderr(),
    /--nb-remote: remote "http:\/\/nb:6641": expected unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT/,
  );
  const unknown = startService(["--nb-remmote", "x"]);
  t.equal(await unknown.exited, 2);
  t.match(unknown.stderr(), /Unknown option '--nb-remmote'/);
  const badTimeout = startService(["--nb-connect-timeout", "soon"]);
  t.equal(await badTimeout.exited, 2);
  t.match(badTimeout.stderr(), /--nb-connect-timeout: expected a positive number of seconds, found "soon"/);
});

t.test("an unreachable Northbound is reported, not waited on forever", async (t) => {
  const service = startService(["--nb-remote", "tcp:127.0.0.1:1", "--nb-connect-timeout", "1"]);
  t.teardown(() => service.child.kill("SIGKILL"));
  t.equal(await service.exited, 1);
  t.ok(
    service.lines.some(
      (l) => l.event === "northbound-unreachable" && /could not connect/.test(String(l.error)),
    ),
  );
});
