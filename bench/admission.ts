/**
 * npm run bench:admission — the real HTTPS service answering /validate and
 * /mutate, against a bare fastify HTTPS endpoint that parses the body and
 * returns a fixed allowed response, on the same certificate, TLS settings and
 * connection count, both measured in this run.
 *
 * Two bodies: a Deployment-made pod with several containers and the usual
 * annotations but none of ours (a pod nothing applies to should cost little
 * more than the envelope), and the same pod carrying our annotations (rates,
 * a NAD attachment). Each server runs alone in a child process
 * (admission-server.ts) and the load comes from autocannon in another, as an
 * API server is another process; with two CPUs the servers run on one and
 * the load on the other.
 *
 * CONNECTIONS (default 16), ROUNDS (default 3) and SECONDS a run (default 4) override.
 */
import { execFile, spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";

const CONNECTIONS = Number(process.env.CONNECTIONS ?? 16);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SECONDS = Number(process.env.SECONDS ?? 4);

const fixture = JSON.parse(
  readFileSync(new URL("../../test/fixtures/pod-create.json", import.meta.url), "utf8"),
) as { request: { object: { metadata: { annotations: Record<string, string> } } } };
const ours = JSON.stringify(fixture);
const plainReview = structuredClone(fixture);
plainReview.request.object.metadata.annotations = {
  "kubectl.kubernetes.io/restartedAt": "2026-11-20T10:02:11Z",
  "prometheus.io/scrape": "true",
  "prometheus.io/port": "9102",
};
const plain = JSON.stringify(plainReview);

// A server on one CPU and the load generator on another: neither takes the other's core and the
// scheduler does not move them mid-run (unpinned runs varied by ±8%).
const pinned =
  os.availableParallelism() >= 2 &&
  spawnSync("taskset", ["-c", "0", "true"], { stdio: "ignore" }).status === 0;
const onCpu = (cpu: number, command: string, args: string[]): [string, string[]] =>
  pinned ? ["taskset", ["-c", String(cpu), command, ...args]] : [command, args];

/** A server in a process of its own; `cpuMicros()` asks it for the CPU time it has used. */
interface ServerProcess {
  url: string;
  cpuMicros(): Promise<number>;
  close(): Promise<void>;
}

async function startServer(kind: "service" | "bare", dir: string): Promise<ServerProcess> {
  const script = new URL("./admission-server.js", import.meta.url).pathname;
  const [command, args] = onCpu(0, process.execPath, [script, kind, dir]);
  const child: ChildProcessWithoutNullStreams = spawn(command, args, { stdio: "pipe" });
  child.stderr.on("data", (chunk: Buffer) => process.stderr.write(chunk));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`the ${kind} server exited (code ${child.exitCode})`);
    return value as string;
  };
  const url = await next();
  return {
    url,
    async cpuMicros() {
      child.stdin.write("cpu\n");
      return (JSON.parse(await next()) as { cpuMicros: number }).cpuMicros;
    },
    async close() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.stdin.end();
      await exited;
    },
  };
}

interface Result {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  /** The server process's CPU (user + system) per request, µs: its own cost, whatever the load generator gets. */
  cpuPerRequest: number;
}

/** autocannon in a child process: the load generator does not share the server's event loop. */
async function drive(server: ServerProcess, route: string, body: string, seconds: number): Promise<Result> {
  const url = `${server.url}${route}`;
  const cpu = await server.cpuMicros();
  const script = `
    const autocannon = require("autocannon");
    autocannon(${JSON.stringify({
      url,
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      connections: CONNECTIONS,
      duration: seconds,
    })}, (err, r) => {
      if (err) { console.error(err.message); process.exit(1); }
      console.log(JSON.stringify({ rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99,
        errors: r.errors + r.timeouts, non2xx: r.non2xx }));
    });`;
  const [command, args] = onCpu(1, process.execPath, ["-e", script]);
  const { stdout } = await promisify(execFile)(command, args, {
    cwd: path.resolve(new URL("../..", import.meta.url).pathname),
    env: { ...process.env, NODE_TLS_REJECT_UNAUTHORIZED: "0" },
    maxBuffer: 1024 * 1024,
  });
  const used = (await server.cpuMicros()) - cpu;
  const result = JSON.parse(stdout.trim().split("\n").at(-1) as string) as Omit<Result, "cpuPerRequest">;
  return { ...result, cpuPerRequest: used / (result.rps * seconds) };
}

const dir = mkdtempSync(path.join(os.tmpdir(), "oa-bench-"));
// The service first: it makes the development certificate the bare endpoint uses too.
const service = await startServer("service", dir);
const bare = await startServer("bare", dir);

// A short warm-up of each, so no run pays for JIT.
await drive(bare, "/validate", plain, 2);
for (const route of ["/validate", "/mutate"])
  for (const body of [plain, ours]) await drive(service, route, body, 2);

// Rounds: the baseline, then each case, then the baseline again. The host's load moves every cost
// up or down by 10% or more from one window to the next, so each case is compared with the
// baselines measured either side of it, not with one measured a minute apart.
const cases = (["plain pod", "pod with our annotations"] as const).flatMap((bodyName) =>
  (["validate", "mutate"] as const).map((webhook) => ({
    name: `webhook /${webhook}, ${bodyName}`,
    route: `/${webhook}`,
    body: bodyName === "plain pod" ? plain : ours,
    results: [] as Result[],
    ratios: [] as number[],
  })),
);
const baselines: Result[] = [await drive(bare, "/validate", plain, SECONDS)];
for (let round = 0; round < ROUNDS; round++) {
  const measured: Result[] = [];
  for (const c of cases) measured.push(await drive(service, c.route, c.body, SECONDS));
  baselines.push(await drive(bare, "/validate", plain, SECONDS));
  const reference = ((baselines.at(-2) as Result).rps + (baselines.at(-1) as Result).rps) / 2;
  cases.forEach((c, i) => {
    const result = measured[i] as Result;
    c.results.push(result);
    c.ratios.push(result.rps / reference);
  });
}

await bare.close();
await service.close();

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const summary = (name: string, results: Result[], ratio?: number) =>
  `${name}: ${Math.round(mean(results.map((r) => r.rps)))} req/s p50 ${Math.max(...results.map((r) => r.p50))} ms p99 ${Math.max(...results.map((r) => r.p99))} ms` +
  `${ratio === undefined ? "" : `, ratio ${ratio.toFixed(2)}`}, server CPU ${mean(results.map((r) => r.cpuPerRequest)).toFixed(0)} µs/req` +
  ` (errors ${results.reduce((n, r) => n + r.errors, 0)}, non-2xx ${results.reduce((n, r) => n + r.non2xx, 0)})`;
console.log(
  `bodies: ${Buffer.byteLength(plain)} and ${Buffer.byteLength(ours)} bytes; ${CONNECTIONS} connections; ${ROUNDS} rounds of ${SECONDS} s a run; each server alone in a child process, load from another${pinned ? "; servers on CPU 0, load on CPU 1" : " (not pinned: no taskset or one CPU)"}`,
);
console.log(summary("baseline (bare fastify, parses the body, fixed answer)", baselines));
for (const c of cases)
  console.log(
    `${summary(c.name, c.results, mean(c.ratios))}; by round ${c.ratios.map((r) => r.toFixed(2)).join(" ")}`,
  );
const worst = cases.reduce((a, b) => (mean(b.ratios) < mean(a.ratios) ? b : a));
const p99 = Math.max(...cases.flatMap((c) => c.results.map((r) => r.p99)));
console.log(
  `admission-bench: webhook ${Math.round(mean(worst.results.map((r) => r.rps)))} req/s (worst: ${worst.name}) p99 ${p99} ms, baseline ${Math.round(mean(baselines.map((r) => r.rps)))} req/s p99 ${Math.max(...baselines.map((r) => r.p99))} ms, ratio ${mean(worst.ratios).toFixed(2)}`,
);
