/**
 * --self-managed-tls on a real kube-apiserver: two replicas start at once and
 * make one CA between them; with a serving certificate of 6 s and a CA of
 * 16 s, the API server keeps calling the webhooks across serving and CA
 * rotations while pods are created without pause, and no admission fails.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import t from "tap";
import { CoreV1Api } from "@kubernetes/client-node";
import { createCertificateAuthority, certificateFacts, splitBundle } from "../../tls/certificates.js";

import { freePort, scratchDir } from "../harness/index.js";
import { apiMessage, kubeFor } from "../harness/kube.js";
import { serviceFor } from "../harness/service.js";
import { waitFor } from "../harness/wait.js";

t.test("two replicas, one CA; pods admitted without a failure across serving and CA rotations", async (t) => {
  const kube = await kubeFor(t);
  const core = kube.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: "ovn-admission" } } });
  await core.createNamespace({ body: { metadata: { name: "shop" } } });
  const port = await freePort();
  // The webhooks start out trusting a CA that signed nothing the service serves: the service must publish its own.
  const stranger = await createCertificateAuthority(scratchDir("oa-tls-"), "stranger", "stranger", 1);
  await kube.registerWebhooks(`https://127.0.0.1:${port}`, stranger.certFile);
  const flags = (servePort: number) => [
    "--port",
    String(servePort),
    "--kubeconfig",
    kube.kubeconfigFile,
    "--lease-namespace",
    "ovn-admission",
    "--self-managed-tls",
    "--self-managed-tls-names",
    "IP:127.0.0.1",
    "--self-managed-cert-validity",
    "6",
    "--self-managed-ca-validity",
    "16",
  ];
  const [a, b] = await Promise.all([serviceFor(t, flags(port)), serviceFor(t, flags(await freePort()))]);
  const both = () => [...a.logs, ...b.logs];
  t.equal(
    both().filter((l) => l.event === "tls-rotated" && l.step === "create").length,
    1,
    "one replica made the CA; the other took it from the Secret",
  );
  const caOf = (dir: string) =>
    splitBundle(readFileSync(path.join(dir, "self-managed", "ca-bundle.crt"), "utf8")).map(
      (pem) => certificateFacts(pem).fingerprint,
    );
  t.same(caOf(a.config.certsDir), caOf(b.config.certsDir), "both replicas trust the same CA");

  const metrics = (await a.request("GET", "/metrics")).text;
  const serving = Number(
    /ovn_admission_certificate_expiry_seconds\{certificate="serving"\} (\S+)/.exec(metrics)?.[1],
  );
  const ca = Number(/ovn_admission_certificate_expiry_seconds\{certificate="ca"\} (\S+)/.exec(metrics)?.[1]);
  t.ok(serving > 0 && serving <= 6, `serving certificate expires in ${serving} s`);
  t.ok(ca > 6 && ca <= 16, `CA expires in ${ca} s`);

  // A new install: the API servers read the published caBundle a moment after it was written.
  await waitFor(
    "the API server to trust the published CA",
    async () =>
      (await core.createNamespacedPod({
        namespace: "shop",
        body: { metadata: { name: "first" }, spec: { containers: [{ name: "c", image: "i" }] } },
      })) !== undefined,
    10_000,
    200,
  );
  // Pods without pause for 22 s: every one must pass through the webhooks.
  const failures: string[] = [];
  let created = 0;
  const until = Date.now() + 22_000;
  for (let i = 0; Date.now() < until; i++) {
    try {
      await core.createNamespacedPod({
        namespace: "shop",
        body: { metadata: { name: `p-${i}` }, spec: { containers: [{ name: "c", image: "i" }] } },
      });
      created++;
    } catch (err) {
      failures.push(`${new Date().toISOString()} p-${i}: ${apiMessage(err)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  t.same(failures.slice(0, 3), [], `no admission failed (${created} pods created)`);
  const admitted = a.logs.filter(
    (l) =>
      l.event === "admission" && l.webhook === "mutate" && l.namespace === "shop" && l.operation === "CREATE",
  ).length;
  t.equal(admitted, created + 1, "the API server called the mutating webhook for every pod");
  const steps = both()
    .filter((l) => l.event === "tls-rotated")
    .map((l) => String(l.step));
  const count = (step: string) => steps.filter((s) => s === step).length;
  t.ok(count("renew-serving") >= 2, `serving certificate renewed ${count("renew-serving")} times`);
  t.ok(count("promote-next-ca") >= 1, `CA replaced ${count("promote-next-ca")} times`);
  t.ok(count("retire-old-cas") >= 1, `old CA retired ${count("retire-old-cas")} times`);
  await waitFor("a reload of the serving certificate", () =>
    a.logs.some((l) => l.event === "certificate-reloaded"),
  );
  t.pass(`steps: ${steps.join(", ")}`);
});
