/**
 * One server for bench/admission.ts, alone in its process: `service` (the
 * real service on embedded defaults) or `bare` (a fastify HTTPS endpoint that
 * parses the body and answers a fixed review), on the certificate in CERTS.
 * Each has a process of its own because two fastify apps in one process share
 * JIT code: whichever warmed up first was up to 20% faster.
 *
 * Prints its base URL; then answers each line "cpu" on stdin with its CPU
 * time so far (user + system, µs), and exits when stdin closes.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import Fastify from "fastify";
import { pino } from "pino";
import { loadConfig } from "../service/config.js";
import { startService } from "../service/server.js";

const [kind, dir] = process.argv.slice(2) as [string, string];
let close: () => Promise<void>;
let url: string;
if (kind === "service") {
  const config = loadConfig(
    ["--port", "0", "--certs-dir", path.join(dir, "certs"), "--state-dir", path.join(dir, "state")],
    {},
  );
  if (config === "help") throw new Error("unexpected --help");
  // Logged as in production: info for an admission that did something, debug for one let through untouched.
  const devNull = pino.destination({ dest: "/dev/null", sync: true });
  const service = await startService(config, { log: pino({ level: "info" }, devNull) });
  url = service.url;
  close = () => service.close();
} else {
  const baseline = Fastify({
    https: {
      cert: readFileSync(path.join(dir, "certs", "tls.crt")),
      key: readFileSync(path.join(dir, "certs", "tls.key")),
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
  url = `https://127.0.0.1:${(baseline.server.address() as { port: number }).port}`;
  close = () => baseline.close();
}
console.log(url);
const lines = createInterface({ input: process.stdin });
lines.on("line", () => {
  const used = process.cpuUsage();
  console.log(JSON.stringify({ cpuMicros: used.user + used.system }));
});
lines.on("close", () => void close().then(() => process.exit(0)));
