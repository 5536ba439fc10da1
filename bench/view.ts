/**
 * npm run bench:view — pods loaded into the cluster view through a real
 * list and watch from a real kube-apiserver (built by scripts/kube-assets.sh).
 * Pods are created in steps (1k, 10k, 100k by default; STEPS=1000,10000
 * overrides); at each step a fresh process syncs the whole view and reports
 * its sync time and resident memory, against a process with an empty view.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { startKube } from "../test/harness/kube.js";

const STEPS = (process.env.STEPS ?? "1000,10000,100000").split(",").map(Number);
const CREATE_CONCURRENCY = 64;
const NAMESPACES = 20;

interface Measurement {
  seconds: number;
  rssMB: number;
  heapMB: number;
  pods: number;
}

/** A fresh process syncs the view; `nodeFlags` as a deployment would set them (a heap cap). */
async function measure(kubeconfig: string, mode = "sync", nodeFlags: string[] = []): Promise<Measurement> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--expose-gc", ...nodeFlags, new URL("./view-child.js", import.meta.url).pathname, kubeconfig, mode],
    {
      maxBuffer: 1024 * 1024,
    },
  );
  return JSON.parse(stdout.trim().split("\n").pop() as string) as Measurement;
}

/** A pod as a Deployment makes it, with the annotations the view indexes on some. */
function pod(i: number): V1Pod {
  const annotations: Record<string, string> = {
    "ovn.kubernetes.io/logical_switch": "ovn-default",
    "ovn.kubernetes.io/ip_address": `10.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
    "ovn.kubernetes.io/mac_address": `0a:58:0a:${((i >> 16) & 255).toString(16).padStart(2, "0")}:${((i >> 8) & 255).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`,
    "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify({
      kind: "Pod",
      metadata: { name: `web-${i}` },
      spec: { containers: [{ name: "web", image: "registry.example.com/shop/web:1.4.2" }] },
    }),
  };
  if (i % 100 === 0) annotations["ovn.kubernetes.io/eip"] = `172.56.${(i / 100) >> 8}.${(i / 100) & 255}`;
  return {
    metadata: { name: `web-${i}`, labels: { app: "web", "pod-template-hash": "7d4b9c8f6" }, annotations },
    spec: {
      nodeName: `node-${i % 50}`,
      containers: [
        {
          name: "web",
          image: "registry.example.com/shop/web:1.4.2",
          ports: [{ containerPort: 8080, protocol: "TCP" }],
          resources: { requests: { cpu: "100m", memory: "128Mi" } },
          env: [{ name: "LOG_LEVEL", value: "info" }],
        },
      ],
    },
  };
}

const kube = await startKube();
const core = kube.kubeConfig.makeApiClient(CoreV1Api);
for (let n = 0; n < NAMESPACES; n++)
  await core.createNamespace({ body: { metadata: { name: `bench-${n}` } } });

const empty = await measure(kube.kubeconfigFile, "empty");
console.log(`baseline: a process with an empty view: ${Math.round(empty.rssMB)} MB resident`);
let created = 0;
let last: Measurement | undefined;
for (const target of STEPS) {
  const started = performance.now();
  let next = created;
  await Promise.all(
    Array.from({ length: CREATE_CONCURRENCY }, async () => {
      while (next < target) {
        const i = next++;
        await core.createNamespacedPod({ namespace: `bench-${i % NAMESPACES}`, body: pod(i) });
      }
    }),
  );
  const createSeconds = (performance.now() - started) / 1000;
  created = target;
  last = await measure(kube.kubeconfigFile);
  if (last.pods !== target) throw new Error(`the view holds ${last.pods} pods, expected ${target}`);
  console.log(
    `${target} pods (created in ${createSeconds.toFixed(1)} s): view synced in ${last.seconds.toFixed(2)} s, ${Math.round(last.rssMB)} MB resident (${Math.round(last.rssMB - empty.rssMB)} MB over the empty view), heap ${Math.round(last.heapMB)} MB`,
  );
  const capped = await measure(kube.kubeconfigFile, "sync", ["--max-old-space-size=256"]);
  console.log(
    `${target} pods, node --max-old-space-size=256: view synced in ${capped.seconds.toFixed(2)} s, ${Math.round(capped.rssMB)} MB resident, heap ${Math.round(capped.heapMB)} MB`,
  );
}
await kube.stop();
if (last)
  console.log(
    `view-bench: ${created} pods synced in ${last.seconds.toFixed(2)} s, ${Math.round(last.rssMB)} MB`,
  );
process.exit(0);
