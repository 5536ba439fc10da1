import { readFileSync } from "node:fs";
import t from "tap";
import { parseAllDocuments } from "yaml";
import { loadConfig } from "../service/config.js";
import { ROUTES } from "../webhooks/rules.js";

interface WebhookEntry {
  name: string;
  sideEffects: string;
  timeoutSeconds: number;
  admissionReviewVersions: string[];
  clientConfig: { service: { path: string } };
  rules: Array<{ apiGroups: string[]; resources: string[]; operations: string[] }>;
}

const webhooks = parseAllDocuments(readFileSync("manifests/base/webhooks.yaml", "utf8")).map(
  (d) =>
    d.toJS() as { kind: string; metadata: { annotations: Record<string, string> }; webhooks: WebhookEntry[] },
);

t.test("the webhook configurations send exactly what the server routes", async (t) => {
  for (const [kind, path] of [
    ["MutatingWebhookConfiguration", "/mutate"],
    ["ValidatingWebhookConfiguration", "/validate"],
  ] as const) {
    const config = webhooks.find((w) => w.kind === kind);
    const entries = config?.webhooks ?? [];
    t.ok(entries.length > 0, `${kind} has webhooks`);
    for (const entry of entries) {
      t.equal(entry.clientConfig.service.path, path, `${entry.name} path`);
      t.equal(
        entry.sideEffects,
        "NoneOnDryRun",
        "dryRun writes nothing, so the API server may send dryRun requests",
      );
      t.same(entry.admissionReviewVersions, ["v1", "v1beta1"]);
    }
    t.match(config?.metadata.annotations["cert-manager.io/inject-ca-from"], /^ovn-admission\//);
    const sent = entries.flatMap((entry) =>
      entry.rules.flatMap((r) =>
        r.resources.flatMap((res) => r.operations.map((op) => `${r.apiGroups[0]}/${res}/${op}`)),
      ),
    );
    const routed = ROUTES.filter((r) => r.webhook === path.slice(1)).flatMap((r) =>
      r.operations.map((op) => `${r.group}/${r.resource}${r.subResource ? `/${r.subResource}` : ""}/${op}`),
    );
    t.same(sent.sort(), routed.sort(), `${kind} rules match the ${path} routes`);
    const defaults = loadConfig([], {});
    if (defaults === "help") throw new Error("unexpected");
    for (const entry of entries) {
      t.ok(
        entry.timeoutSeconds * 1000 > defaults.deadlineMs,
        `${entry.name}: timeoutSeconds above the admission deadline`,
      );
    }
  }
});

t.test("the NetworkPolicy admits only the webhook port the Deployment serves", async (t) => {
  const kustomization = readFileSync("manifests/base/kustomization.yaml", "utf8");
  t.match(kustomization, /- networkpolicy\.yaml/, "part of the base");
  const [policy] = parseAllDocuments(readFileSync("manifests/base/networkpolicy.yaml", "utf8")).map(
    (d) =>
      d.toJS() as {
        spec: {
          podSelector: { matchLabels: Record<string, string> };
          policyTypes: string[];
          ingress: Array<{ from?: unknown; ports: Array<{ port: number; protocol: string }> }>;
        };
      },
  );
  const [deployment] = parseAllDocuments(readFileSync("manifests/base/deployment.yaml", "utf8")).map(
    (d) =>
      d.toJS() as {
        spec: {
          template: {
            metadata: { labels: Record<string, string> };
            spec: { containers: Array<{ args: string[]; ports: Array<{ containerPort: number }> }> };
          };
        };
      },
  );
  const pod = deployment?.spec.template;
  t.same(policy?.spec.podSelector.matchLabels, pod?.metadata.labels, "selects the service's pods");
  t.same(policy?.spec.policyTypes, ["Ingress"]);
  const ports = policy?.spec.ingress.flatMap((rule) => rule.ports.map((p) => p.port));
  const served = pod?.spec.containers[0]?.args.find((a) => a.startsWith("--port="))?.slice("--port=".length);
  t.same(ports, [Number(served)], "exactly the webhook port");
  t.same(
    pod?.spec.containers[0]?.ports.map((p) => p.containerPort),
    [Number(served)],
  );
});
