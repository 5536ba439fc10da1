import { readFileSync } from "node:fs";
import t from "tap";
import { parseAllDocuments } from "yaml";
import { loadConfig, usage } from "../service/config.js";
import { ROUTES } from "../webhooks/routes.js";
import { kustomize, type ManifestObject } from "./harness/kustomize.js";

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

type Container = {
  args: string[];
  image: string;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: Record<string, unknown>;
  startupProbe?: { httpGet: { path: string } };
  readinessProbe?: { httpGet: { path: string } };
  livenessProbe?: { httpGet: { path: string } };
  volumeMounts: Array<{ name: string; mountPath: string }>;
  env: Array<{ name: string; value?: string }>;
};
type PodSpec = {
  priorityClassName?: string;
  terminationGracePeriodSeconds?: number;
  topologySpreadConstraints?: unknown[];
  securityContext: { seccompProfile?: { type: string } };
  containers: Container[];
  volumes: Array<{ name: string; secret?: { secretName: string } }>;
};
const deploymentOf = (objects: ManifestObject[]) =>
  objects.find((o) => o.kind === "Deployment") as unknown as {
    spec: { replicas: number; template: { spec: PodSpec } };
  };

t.test(
  "every overlay renders: one image line, an operator's Deployment, a PDB, a way to the CA",
  async (t) => {
    const defaults = loadConfig([], {});
    if (defaults === "help") throw new Error("unexpected");
    for (const overlay of ["cert-manager", "self-managed", "kube-ovn"]) {
      const objects = kustomize(`manifests/overlays/${overlay}`);
      const names = objects.map((o) => `${o.kind}/${o.metadata.name}`);
      t.equal(new Set(names).size, names.length, `${overlay}: no object twice`);
      for (const o of objects)
        if (
          !["Namespace", "ClusterRole", "ClusterRoleBinding"].includes(o.kind) &&
          !o.kind.endsWith("WebhookConfiguration")
        )
          t.ok(o.metadata.namespace, `${overlay}: ${o.kind}/${o.metadata.name} names its namespace`);
      const deployment = deploymentOf(objects);
      const pod = deployment.spec.template.spec;
      const [container] = pod.containers as [Container];
      t.equal(container.image, "ovn-admission:0.1.0", `${overlay}: the image from kustomize images:`);
      t.ok(deployment.spec.replicas >= 2, "two replicas at least");
      t.equal(pod.priorityClassName, "system-cluster-critical");
      t.ok(
        (pod.terminationGracePeriodSeconds ?? 30) * 1000 > defaults.deadlineMs,
        "grace above the deadline",
      );
      t.equal(pod.securityContext.seccompProfile?.type, "RuntimeDefault");
      t.match(container.securityContext, {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ["ALL"] },
      });
      t.ok(pod.topologySpreadConstraints?.length, "spread across nodes");
      t.equal(container.readinessProbe?.httpGet.path, "/readyz");
      t.equal(container.livenessProbe?.httpGet.path, "/healthz");
      t.ok(container.startupProbe, "a startup probe");
      t.ok(
        container.resources?.requests?.memory && container.resources.limits?.memory,
        "memory requests and limits",
      );
      t.same(
        objects
          .filter((o) => o.kind === "PodDisruptionBudget")
          .map((o) => (o.spec as { minAvailable: number }).minAvailable),
        [1],
      );
      const certsDir = container.args.find((a) => a.startsWith("--certs-dir="))?.slice("--certs-dir=".length);
      t.ok(
        container.volumeMounts.some((m) => m.mountPath === certsDir),
        "--certs-dir is a mounted volume (the root filesystem is read-only)",
      );
      const configs = objects.filter((o) => o.kind.endsWith("WebhookConfiguration"));
      t.equal(configs.length, 2);
      if (overlay === "kube-ovn") {
        const config = loadConfig(
          [...container.args.filter((a) => !a.startsWith("--host")), "--kubeconfig", "/dev/null"],
          Object.fromEntries(container.env.filter((e) => e.value).map((e) => [e.name, e.value as string])),
        );
        if (config === "help") throw new Error("unexpected");
        t.equal(config.alongside, "kube-ovn", "kube-ovn: the profile beside Kube-OVN");
        t.equal(
          config.northboundRemote,
          "tcp:ovn-nb.kube-system:6641",
          "kube-ovn: Kube-OVN's Northbound service",
        );
        t.same(
          [config.clusterRouter, config.defaultSubnet],
          ["ovn-cluster", "ovn-default"],
          "kube-ovn: Kube-OVN's default router and subnet",
        );
      }
      if (overlay !== "self-managed") {
        for (const c of configs)
          t.equal(
            c.metadata.annotations?.["cert-manager.io/inject-ca-from"],
            "ovn-admission/ovn-admission-serving",
          );
        t.ok(container.args.includes("--tls-cert-file=/etc/ovn-admission/tls/tls.crt"));
        t.ok(
          pod.volumes.some((v) => v.secret?.secretName === "ovn-admission-tls"),
          "cert-manager's Secret mounted",
        );
        t.ok(names.includes("Certificate/ovn-admission-serving"));
      } else {
        t.ok(container.args.includes("--self-managed-tls"));
        t.ok(!container.args.some((a) => a.startsWith("--tls-cert-file")));
        for (const c of configs) t.notOk(c.metadata.annotations?.["cert-manager.io/inject-ca-from"]);
        const config = loadConfig(
          [...container.args.filter((a) => !a.startsWith("--host")), "--kubeconfig", "/dev/null"],
          {
            POD_NAMESPACE: "ovn-admission",
          },
        );
        if (config === "help") throw new Error("unexpected");
        t.equal(config.selfManagedTlsSecret, "ovn-admission-self-managed-tls", "the Secret the Role names");
      }
    }
  },
);

t.test(
  "webhooks never judge kube-system or the service's own namespace (but the gateway ConfigMap hook)",
  async (t) => {
    for (const config of webhooks) {
      for (const entry of config.webhooks as Array<
        WebhookEntry & {
          namespaceSelector?: {
            matchExpressions?: Array<{ key: string; operator: string; values: string[] }>;
            matchLabels?: Record<string, string>;
          };
        }
      >) {
        const scoped = entry.rules.some((r) =>
          r.resources.some((res) => !["nodes"].includes(res.split("/")[0] as string)),
        );
        if (!scoped) continue;
        if (entry.name.startsWith("gateway-config.")) {
          t.same(entry.namespaceSelector?.matchLabels, { "kubernetes.io/metadata.name": "kube-system" });
          continue;
        }
        const byName = entry.namespaceSelector?.matchExpressions?.find(
          (e) => e.key === "kubernetes.io/metadata.name",
        );
        t.same(
          byName,
          { key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["kube-system", "ovn-admission"] },
          entry.name,
        );
      }
    }
  },
);

t.test("README's configuration table has every option, with its environment variable", async (t) => {
  const readme = readFileSync("README.md", "utf8");
  const help = usage({});
  const options = [...help.matchAll(/^ {2}--([a-z-]+)(?: <value>)? {3}(\S+)$/gm)].map((m) => [m[1], m[2]]);
  t.ok(options.length > 40, `${options.length} options in --help`);
  const missing = options.filter(([flag, env]) => !readme.includes(`| \`--${flag}\` | \`${env}\` |`));
  t.same(missing, [], "each option is a row of README's table");
});
