/**
 * npm run bench:admission — the real HTTPS service answering /validate and
 * /mutate for a realistic pod, against a bare fastify HTTPS endpoint that
 * returns a fixed allowed response, both on this machine in this run, both
 * driven by autocannon with keep-alive at fixed concurrency and duration.
 *
 * CONNECTIONS (default 16) and DURATION seconds (default 10) override.
 */
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { mkdtempSync } from "node:fs";
import autocannon from "autocannon";
import Fastify from "fastify";
import { pino } from "pino";
import { loadConfig } from "../service/config.js";
import { startService } from "../service/server.js";

const CONNECTIONS = Number(process.env.CONNECTIONS ?? 16);
const DURATION = Number(process.env.DURATION ?? 10);

const fixtureFile = new URL("../../test/fixtures/pod-create.json", import.meta.url);
const body = readFileSync(fixtureFile, "utf8");

interface Result {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

async function drive(url: string, requestBody: string): Promise<Result> {
  const result = await autocannon({
    url,
    method: "POST",
    headers: { "content-type": "application/json" },
    body: requestBody,
    connections: CONNECTIONS,
    duration: DURATION,
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

const dir = mkdtempSync(path.join(os.tmpdir(), "oa-bench-"));
const config = loadConfig(["--port", "0", "--certs-dir", `${dir}/certs`, "--state-dir", `${dir}/state`], {});
if (config === "help") throw new Error("unexpected --help");
const service = await startService(config, { log: pino({ level: "warn" }) });

const baseline = Fastify({
  https: { cert: readFileSync(`${dir}/certs/tls.crt`), key: readFileSync(`${dir}/certs/tls.key`) },
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
const baselinePort = (baseline.server.address() as { port: number }).port;

// A short warm-up of each, so neither pays for JIT in the measured run.
const warm = {
  connections: CONNECTIONS,
  duration: 2,
  method: "POST" as const,
  headers: { "content-type": "application/json" },
  body,
};
await autocannon({ ...warm, url: `${service.url}/validate` });
await autocannon({ ...warm, url: `https://127.0.0.1:${baselinePort}/validate` });

const webhook = await drive(`${service.url}/validate`, body);
const mutate = await drive(`${service.url}/mutate`, body);
const bare = await drive(`https://127.0.0.1:${baselinePort}/validate`, body);

await baseline.close();
await service.close();

const line = (name: string, r: Result) =>
  `${name}: ${Math.round(r.rps)} req/s p50 ${r.p50} ms p99 ${r.p99} ms (${CONNECTIONS} connections, ${DURATION} s, errors ${r.errors}, non-2xx ${r.non2xx})`;
console.log(`request body: realistic pod CREATE AdmissionReview, ${Buffer.byteLength(body)} bytes`);
console.log(line("webhook /validate", webhook));
console.log(line("webhook /mutate", mutate));
console.log(line("baseline (bare fastify, fixed answer)", bare));
console.log(
  `admission-bench: webhook ${Math.round(webhook.rps)} req/s p50 ${webhook.p50} ms p99 ${webhook.p99} ms, baseline ${Math.round(bare.rps)} req/s p50 ${bare.p50} ms p99 ${bare.p99} ms, ratio ${(webhook.rps / bare.rps).toFixed(2)}`,
);
