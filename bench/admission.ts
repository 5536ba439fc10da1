/**
 * npm run bench:admission — the real HTTPS service answering /validate and
 * /mutate, against a bare fastify HTTPS endpoint that parses the body and
 * returns a fixed allowed response, on the same certificate, TLS settings and
 * connection count, both measured in this run.
 *
 * Two bodies: a Deployment-made pod with several containers and the usual
 * annotations but none of ours (a pod nothing applies to should cost little
 * more than the envelope), and the same pod carrying our annotations (rates,
 * a NAD attachment). The load comes from autocannon in a child process, as
 * an API server is another process: the server under test has this
 * process's event loop to itself.
 *
 * CONNECTIONS (default 16) and DURATION seconds (default 10) override.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import Fastify from "fastify";
import { pino } from "pino";
import { loadConfig } from "../service/config.js";
import { startService } from "../service/server.js";

const CONNECTIONS = Number(process.env.CONNECTIONS ?? 16);
const DURATION = Number(process.env.DURATION ?? 10);

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

interface Result {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

/** autocannon in a child process: the load generator does not share the server's event loop. */
async function drive(url: string, body: string, seconds = DURATION): Promise<Result> {
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
  const { stdout } = await promisify(execFile)(process.execPath, ["-e", script], {
    cwd: path.resolve(new URL("../..", import.meta.url).pathname),
    env: { ...process.env, NODE_TLS_REJECT_UNAUTHORIZED: "0" },
    maxBuffer: 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split("\n").at(-1) as string) as Result;
}

const dir = mkdtempSync(path.join(os.tmpdir(), "oa-bench-"));
const config = loadConfig(["--port", "0", "--certs-dir", `${dir}/certs`, "--state-dir", `${dir}/state`], {});
if (config === "help") throw new Error("unexpected --help");
// The service logs one info line per admission in production; the benchmark keeps that cost in.
const devNull = pino.destination({ dest: "/dev/null", sync: true });
const service = await startService(config, { log: pino({ level: "info" }, devNull) });

const baseline = Fastify({
  https: {
    cert: readFileSync(`${dir}/certs/tls.crt`),
    key: readFileSync(`${dir}/certs/tls.key`),
    minVersion: "TLSv1.2",
  },
  keepAliveTimeout: 120_000,
});
const fixed = JSON.stringify({
  apiVersion: "admission.k8s.io/v1",
  kind: "AdmissionReview",
  response: { uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: true },
});
baseline.post("/validate", async (_request, reply) =>
  reply.header("content-type", "application/json").send(fixed),
);
await baseline.listen({ host: "127.0.0.1", port: 0 });
const bare = `https://127.0.0.1:${(baseline.server.address() as { port: number }).port}/validate`;

// A short warm-up of each, so no run pays for JIT.
for (const url of [bare, `${service.url}/validate`, `${service.url}/mutate`])
  for (const body of [plain, ours]) await drive(url, body, 2);

const runs: Array<{ name: string; result: Result }> = [];
const before = await drive(bare, plain);
for (const [bodyName, body] of [
  ["plain pod", plain],
  ["pod with our annotations", ours],
] as const)
  for (const webhook of ["validate", "mutate"])
    runs.push({
      name: `webhook /${webhook}, ${bodyName}`,
      result: await drive(`${service.url}/${webhook}`, body),
    });
const after = await drive(bare, plain);

await baseline.close();
await service.close();

// The baseline before and after the webhook runs: the machine's drift shows, and their mean is the reference.
const reference = (before.rps + after.rps) / 2;
const line = (name: string, r: Result) =>
  `${name}: ${Math.round(r.rps)} req/s p50 ${r.p50} ms p99 ${r.p99} ms, ratio ${(r.rps / reference).toFixed(2)} (errors ${r.errors}, non-2xx ${r.non2xx})`;
console.log(
  `bodies: ${Buffer.byteLength(plain)} and ${Buffer.byteLength(ours)} bytes; ${CONNECTIONS} connections, ${DURATION} s each, load from a child process`,
);
console.log(line("baseline (bare fastify, parses the body, fixed answer) before", before));
for (const { name, result } of runs) console.log(line(name, result));
console.log(line("baseline after", after));
const worst = runs.reduce((a, b) => (b.result.rps < a.result.rps ? b : a));
const p99 = Math.max(...runs.map((r) => r.result.p99));
console.log(
  `admission-bench: webhook ${Math.round(worst.result.rps)} req/s (worst: ${worst.name}) p99 ${p99} ms, baseline ${Math.round(reference)} req/s p99 ${Math.max(before.p99, after.p99)} ms, ratio ${(worst.result.rps / reference).toFixed(2)}`,
);
