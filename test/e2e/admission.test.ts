/**
 * End to end against a real kube-apiserver: objects sent with the client
 * library reach our webhooks through the API server, and what we answer
 * reaches the client unchanged.
 */
import t from "tap";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { apiMessage, kubeFor } from "../harness/kube.js";
import { serviceFor } from "../harness/service.js";

function pod(name: string, annotations: Record<string, string>): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "shop", annotations },
    spec: { containers: [{ name: "web", image: "registry.example.com/shop/web:1.4.2" }] },
  };
}

function apiError(err: unknown): { code: number; message: string } {
  return { code: (err as { code: number }).code, message: apiMessage(err) };
}

t.test("pods created through the real API server are judged by our webhooks", async (t) => {
  const kube = await kubeFor(t);
  // The service watches the same cluster: namespace policy comes from its view.
  const s = await serviceFor(t, ["--kubeconfig", kube.kubeconfigFile]);
  await kube.registerWebhooks(s.service.url, s.service.caFile as string);
  const core = kube.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: "shop" } } });

  const bad = pod("qos-typo", { "ovn.kubernetes.io/ingress_rate": "100M" });
  const ours =
    'metadata.annotations["ovn.kubernetes.io/ingress_rate"]: expected a whole number of Mbit/s (e.g. "100"), found "100M"';
  // Webhook configurations are noticed about a second after they are created: retry until ours answers.
  let denial: { code: number; message: string } | undefined;
  for (let i = 0; i < 50 && !denial; i++) {
    try {
      await core.createNamespacedPod({ namespace: "shop", body: bad, dryRun: "All" });
      await new Promise((r) => setTimeout(r, 200));
    } catch (err) {
      denial = apiError(err);
    }
  }
  t.ok(denial, "the API server called our webhook");
  t.equal(denial?.code, 400);
  t.equal(
    denial?.message,
    `admission webhook "validate.ovn-admission.io" denied the request: ${ours}`,
    "our message reaches the client unchanged",
  );

  const real = await core.createNamespacedPod({ namespace: "shop", body: bad }).catch(apiError);
  t.match(real, { code: 400, message: new RegExp(ours.replace(/[[\]().]/g, "\\$&")) });
  await t.rejects(core.readNamespacedPod({ namespace: "shop", name: "qos-typo" }), "nothing was stored");

  // A namespace labelled warn: the same typo is admitted, once the view has seen the label.
  await core.createNamespace({
    body: { metadata: { name: "lenient", labels: { "ovn-admission.io/policy": "warn" } } },
  });
  let admitted: V1Pod | undefined;
  for (let i = 0; i < 50 && !admitted; i++) {
    admitted = await core
      .createNamespacedPod({
        namespace: "lenient",
        body: { ...bad, metadata: { ...bad.metadata, namespace: "lenient" } },
      })
      .catch(async () => {
        await new Promise((r) => setTimeout(r, 100));
        return undefined;
      });
  }
  t.equal(admitted?.metadata?.name, "qos-typo", "admitted under policy warn");
  t.match(
    s.logs.find((l) => l.event === "admission" && l.webhook === "validate" && l.namespace === "lenient"),
    { verdict: "warned", policy: "warn" },
  );
  const ready = await s.request("GET", "/readyz");
  t.match(ready.json, { status: "ready" }, "ready once the view synced");
  const metrics = (await s.request("GET", "/metrics")).text;
  t.match(metrics, /ovn_admission_cache_rows\{cache="Namespace"\} [1-9]/, "cache sizes in metrics");
});
