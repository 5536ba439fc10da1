/**
 * The service as its own process, as a Deployment runs it, for benchmarks
 * that drive it through a real kube-apiserver: development certificates in
 * the run's directory, its log in service.log there, ready once /readyz
 * answers 200, and its webhooks registered with the API server.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { openSync, readFileSync } from "node:fs";
import https from "node:https";
import path from "node:path";
import { freePort } from "ovsdb-sandbox";
import type { KubeApi } from "../test/harness/kube.js";

export interface ServiceProcess {
  process: ChildProcess;
  url: string;
  /** The development CA that signed the serving certificate. */
  ca: Buffer;
  logFile: string;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts `bin/ovn-admission.js` with `args` (beside --kubeconfig, --port, --certs-dir, --state-dir), waits until ready. */
export async function startServiceProcess(
  dir: string,
  kube: KubeApi,
  args: string[],
): Promise<ServiceProcess> {
  const port = await freePort();
  const certs = path.join(dir, "certs");
  const logFile = path.join(dir, "service.log");
  const out = openSync(logFile, "a");
  const child = spawn(
    process.execPath,
    [
      new URL("../bin/ovn-admission.js", import.meta.url).pathname,
      "--kubeconfig",
      kube.kubeconfigFile,
      "--port",
      String(port),
      "--certs-dir",
      certs,
      "--state-dir",
      path.join(dir, "state"),
      ...args,
    ],
    { stdio: ["ignore", out, out] },
  );
  const url = `https://127.0.0.1:${port}`;
  let ca: Buffer | undefined;
  const status = (route: string) =>
    new Promise<number>((resolve) => {
      https
        .get(`${url}${route}`, { ca }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on("error", () => resolve(0));
    });
  for (let i = 0; i < 300 && !ca; i++) {
    await sleep(100);
    try {
      ca = readFileSync(path.join(certs, "ca.pem"));
    } catch {
      // not written yet
    }
  }
  if (!ca) throw new Error(`the service wrote no CA in 30 s; see ${logFile}`);
  for (let i = 0; i < 300 && (await status("/readyz")) !== 200; i++) await sleep(100);
  await kube.registerWebhooks(url, path.join(certs, "ca.pem"));
  return {
    process: child,
    url,
    ca,
    logFile,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    },
  };
}
