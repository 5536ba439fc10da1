/**
 * The real service on an ephemeral port with generated certificates, and a
 * small HTTPS client that trusts its CA: for tests that speak HTTPS to it.
 */
import { readFileSync } from "node:fs";
import https from "node:https";
import { Writable } from "node:stream";
import type { TLSSocket } from "node:tls";
import { pino } from "pino";
import type { Test } from "tap";
import { scratchDir } from "ovsdb-sandbox";
import { loadConfig, type Config } from "../../service/config.js";
import { startService, type Service, type ServiceParts } from "../../service/server.js";

export interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Record<string, unknown>;
  /** SHA-256 fingerprint of the certificate the server presented. */
  fingerprint: string;
}

export interface TestService {
  service: Service;
  config: Config;
  /** The development CA that signed the serving certificate (empty when the test supplied its own). */
  ca: Buffer;
  /** Every log line the service wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  request(
    method: string,
    path: string,
    options?: { body?: string | Buffer; contentType?: string; agent?: https.Agent },
  ): Promise<HttpsAnswer>;
  review(path: "/mutate" | "/validate", body: unknown, agent?: https.Agent): Promise<HttpsAnswer>;
}

/** Starts the service with `flags` on port 0; closed when the test ends. */
export async function serviceFor(
  t: Test,
  flags: string[] = [],
  parts: ServiceParts = {},
): Promise<TestService> {
  const dir = scratchDir("oa-svc-");
  const config = loadConfig(
    [
      "--port",
      "0",
      "--certs-dir",
      `${dir}/certs`,
      "--state-dir",
      `${dir}/state`,
      "--cert-reload-interval",
      "0.1",
      ...flags,
    ],
    {},
  );
  if (config === "help") throw new Error("unexpected --help");
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n"))
        if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const service = await startService(config, { log: pino({ level: "debug" }, sink), ...parts });
  t.teardown(() => service.close());
  // With certificates of the test's own, the test brings its own CA too.
  const ca = service.caFile ? readFileSync(service.caFile) : Buffer.alloc(0);

  const request: TestService["request"] = (method, path, options = {}) =>
    new Promise((resolve, reject) => {
      const req = https.request(
        `${service.url}${path}`,
        {
          method,
          ca,
          agent: options.agent ?? false,
          headers:
            options.body !== undefined ? { "content-type": options.contentType ?? "application/json" } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          const fingerprint = (res.socket as TLSSocket).getPeerX509Certificate?.()?.fingerprint256 ?? "";
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString();
            let json: Record<string, unknown> = {};
            try {
              json = JSON.parse(text) as Record<string, unknown>;
            } catch {
              // not JSON: /metrics
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, fingerprint });
          });
        },
      );
      req.on("error", reject);
      req.end(options.body);
    });
  return {
    service,
    config,
    ca,
    logs,
    request,
    review: (path, body, agent) =>
      request("POST", path, { body: JSON.stringify(body), ...(agent ? { agent } : {}) }),
  };
}

/** The `response` of an AdmissionReview answer. */
export function responseOf(answer: HttpsAnswer): Record<string, unknown> & { uid: string; allowed: boolean } {
  return answer.json.response as Record<string, unknown> & { uid: string; allowed: boolean };
}
