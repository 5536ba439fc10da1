/** One measurement for bench/view.ts: a fresh process syncs the view from the cluster and reports. */
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { startInformers } from "../cluster/informers.js";

const [kubeconfig, mode] = process.argv.slice(2);
const gc = (globalThis as { gc?: () => void }).gc;
if (mode === "empty") {
  gc?.();
  console.log(
    JSON.stringify({
      seconds: 0,
      rssMB: process.memoryUsage().rss / 2 ** 20,
      heapMB: process.memoryUsage().heapUsed / 2 ** 20,
      pods: 0,
    }),
  );
} else {
  const config = new KubeConfig();
  config.loadFromFile(kubeconfig as string);
  const started = performance.now();
  const informers = startInformers(config, pino({ level: "warn" }));
  await informers.synced;
  const seconds = (performance.now() - started) / 1000;
  gc?.();
  const memory = process.memoryUsage();
  console.log(
    JSON.stringify({
      seconds,
      rssMB: memory.rss / 2 ** 20,
      heapMB: memory.heapUsed / 2 ** 20,
      pods: informers.state.sizes().Pod,
    }),
  );
  informers.stop();
}
process.exit(0);
