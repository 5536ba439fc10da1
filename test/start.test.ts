import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import https from "node:https";
import path from "node:path";
import t from "tap";
import { scratchDir } from "./harness/index.js";
import { waitFor } from "./harness/wait.js";

const entry = path.resolve("dist/bin/ovn-admission.js");

function startService(args: string[]) {
  // No cluster from the environment: each test says what it wants with flags.
  const env = { ...process.env, KUBECONFIG: "", KUBERNETES_SERVICE_HOST: "" };
  const child = spawn(process.execPath, [entry, ...args], { stdio: ["ignore", "pipe", "pipe"], env });
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

t.before(() => {
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run npm run build first (npm test does)`);
});

t.test(
  "on embedded defaults it serves HTTPS with a dev CA, runs a local Northbound, and stops both on SIGTERM",
  async (t) => {
    const dir = scratchDir("oa-start-");
    const service = startService([
      "--state-dir",
      `${dir}/state`,
      "--certs-dir",
      `${dir}/certs`,
      "--port",
      "0",
    ]);
    t.teardown(() => service.child.kill("SIGKILL"));
    await waitFor("listening", () => service.lines.some((l) => l.event === "listening"));
    const started = service.lines.find((l) => l.event === "local-northbound-started");
    t.match(started, { remote: `unix:${dir}/state/nb.sock`, dbFile: `${dir}/state/nb.db` });
    const listening = service.lines.find((l) => l.event === "listening") as {
      url: string;
      caFile: string;
      msg: string;
    };
    t.equal(listening.caFile, `${dir}/certs/ca.pem`);
    t.match(
      service.lines.find((l) => l.event === "cluster-view-empty"),
      { msg: /no Kubernetes cluster found .*the cluster view is empty/ },
      "without a cluster it says so and serves with an empty view",
    );
    t.match(listening.msg, `curl --cacert ${dir}/certs/ca.pem ${listening.url}/readyz`);
    // What the printed curl command does.
    const ready = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      https
        .get(`${listening.url}/readyz`, { ca: readFileSync(listening.caFile) }, (res) => {
          let body = "";
          res.on("data", (d: Buffer) => (body += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on("error", reject);
    });
    t.equal(ready.status, 200);
    t.match(JSON.parse(ready.body), { status: "ready" });
    const ovsdbPid = started?.pid as number;
    service.child.kill("SIGTERM");
    t.equal(await service.exited, 0, "clean exit");
    t.ok(service.lines.some((l) => l.event === "stopped"));
    t.throws(() => process.kill(ovsdbPid, 0), "the local ovsdb-server is stopped");
    t.ok(existsSync(path.join(dir, "state", "nb.db")), "the database file is kept for the next start");
  },
);

t.test("--help lists every option with its default", async (t) => {
  const service = startService(["--help"]);
  let out = "";
  service.child.stdout.removeAllListeners("data");
  service.child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  t.equal(await service.exited, 0);
  for (const flag of [
    "--port",
    "--tls-cert-file",
    "--body-limit",
    "--admission-deadline",
    "--mutate-failure-mode",
    "--policy-label",
    "--nb-remote",
  ]) {
    t.match(out, flag);
  }
  t.match(out, /--port <value> +OVN_ADMISSION_PORT\n.*\n +default: 8443/);
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
  const small = startService(["--body-limit", "1Mi"]);
  t.equal(await small.exited, 2);
  t.match(
    small.stderr(),
    /--body-limit: expected at least 3Mi \(the API server's object limit\), found "1Mi"/,
  );
  const badTimeout = startService(["--nb-connect-timeout", "soon"]);
  t.equal(await badTimeout.exited, 2);
  t.match(badTimeout.stderr(), /--nb-connect-timeout: expected a positive number of seconds, found "soon"/);
});

t.test("an unreachable Northbound is reported, not waited on forever", async (t) => {
  const dir = scratchDir("oa-start-");
  const service = startService([
    "--nb-remote",
    "tcp:127.0.0.1:1",
    "--nb-connect-timeout",
    "1",
    "--certs-dir",
    dir,
    "--port",
    "0",
  ]);
  t.teardown(() => service.child.kill("SIGKILL"));
  t.equal(await service.exited, 1);
  t.match(
    service.stderr(),
    /cannot reach OVN Northbound at tcp:127\.0\.0\.1:1: could not connect to tcp:127\.0\.0\.1:1 within 1000 ms/,
  );
});
