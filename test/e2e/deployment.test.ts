/**
 * A Deployment of 50 replicas as a user applies it, with the real
 * kube-controller-manager making the pods and the real kube-scheduler binding
 * them: each pod gets its address at its binding, its annotations and `ovn`
 * JSON match its logical switch port, and scaling to 0 releases every port.
 */
import t from "tap";
import { AppsV1Api, CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { op } from "ovsdb-client";
import { cidrContains } from "../../domain/addresses.js";
import { kubeFor, readyNodes } from "../harness/kube.js";
import { serviceFor } from "../harness/service.js";
import { waitFor } from "../harness/wait.js";

const NB = "OVN_Northbound";
const REPLICAS = 50;

t.test(
  "a Deployment of 50 replicas: bound, addressed, ports matching; scaled to 0, every port released",
  async (t) => {
    const kube = await kubeFor(t, { controllers: true });
    const s = await serviceFor(t, [
      "--kubeconfig",
      kube.kubeconfigFile,
      "--lease-namespace",
      "default",
      "--reconcile-interval",
      "2",
      "--nat-release-grace",
      "5",
    ]);
    await kube.registerWebhooks(s.service.url, s.service.caFile as string);
    const core = kube.kubeConfig.makeApiClient(CoreV1Api);
    const apps = kube.kubeConfig.makeApiClient(AppsV1Api);
    await kube.createSubnet("ovn-default", {
      cidrBlock: "10.16.0.0/16",
      gateway: "10.16.0.1",
      default: true,
    });
    await waitFor("the view to have the subnet", () => s.service.view.subnet("ovn-default") !== undefined);

    // Two nodes that are Ready, as kubelets would report them.
    await readyNodes(core, { "node-1": "192.168.1.1", "node-2": "192.168.1.2" });
    await core.createNamespace({ body: { metadata: { name: "shop" } } });
    const started = performance.now();
    await apps.createNamespacedDeployment({
      namespace: "shop",
      body: {
        metadata: { name: "web" },
        spec: {
          replicas: REPLICAS,
          selector: { matchLabels: { app: "web" } },
          template: {
            metadata: { labels: { app: "web" } },
            spec: { containers: [{ name: "web", image: "docker.io/library/nginx:alpine" }] },
          },
        },
      },
    });
    const list = async (): Promise<V1Pod[]> => (await core.listNamespacedPod({ namespace: "shop" })).items;
    const pods = await waitFor(
      `${REPLICAS} pods bound and addressed`,
      async () => {
        const items = await list();
        const done = items.filter(
          (p) => p.spec?.nodeName && p.metadata?.annotations?.["ovn.kubernetes.io/allocated"] === "true",
        );
        return done.length === REPLICAS ? done : undefined;
      },
      120_000,
      250,
    );
    t.comment(
      `${REPLICAS} pods created, bound and addressed in ${Math.round(performance.now() - started)} ms`,
    );
    t.comment(
      `${s.logs.filter((l) => l.event === "port-claimed").length} claims in all, ${s.logs.filter((l) => l.event === "bound-pod-addressed").length} of them for pods bound before the view had them`,
    );
    const ips = pods.map((p) => p.metadata?.annotations?.["ovn.kubernetes.io/ip_address"] as string);
    t.equal(new Set(ips).size, REPLICAS, "distinct addresses");
    t.ok(
      ips.every((ip) => cidrContains("10.16.0.0/16", ip) && ip !== "10.16.0.1"),
      "all in the subnet, none the gateway",
    );

    const portsOf = async (): Promise<Map<string, { addresses: string; enabled: boolean; on: boolean }>> => {
      const [sw, ports] = await s.service.northbound.transact(NB, [
        op.select("Logical_Switch", [["name", "==", "ovn-default"]], ["ports"]),
        op.select("Logical_Switch_Port", [], ["_uuid", "name", "addresses", "enabled"]),
      ]);
      const on = new Set(((sw?.rows?.[0]?.ports as string[] | undefined) ?? []).map(String));
      return new Map(
        (ports?.rows ?? []).map((p) => [
          String(p.name),
          {
            addresses: ((p.addresses as string[]) ?? []).join(","),
            enabled: p.enabled !== false,
            on: on.has(String(p._uuid)),
          },
        ]),
      );
    };
    await waitFor("every stored pod's port on its switch", async () => {
      const ports = await portsOf();
      return pods.every((p) => ports.get(`${p.metadata?.name}.shop`)?.on);
    }).catch(() => undefined);
    const ports = await portsOf();
    const mismatched = pods.filter((p) => {
      const a = p.metadata?.annotations ?? {};
      const port = ports.get(`${p.metadata?.name}.shop`);
      const ovn = JSON.parse(a.ovn ?? "{}") as {
        ip_address?: string;
        mac_address?: string;
        gateway_ip?: string;
      };
      return !(
        port?.on &&
        port.enabled &&
        port.addresses === `${a["ovn.kubernetes.io/mac_address"]} ${a["ovn.kubernetes.io/ip_address"]}` &&
        ovn.ip_address === `${a["ovn.kubernetes.io/ip_address"]}/16` &&
        ovn.mac_address === a["ovn.kubernetes.io/mac_address"] &&
        ovn.gateway_ip === "10.16.0.1"
      );
    });
    t.same(
      mismatched.map((p) => p.metadata?.name),
      [],
      "every pod's annotations and ovn JSON match its enabled port on ovn-default",
    );

    // Scaled to 0: the ReplicaSet deletes the pods. No kubelet runs here to finish a bound pod's graceful
    // deletion, so the test finishes it as a kubelet would (grace 0) once the pod is terminating.
    // Through the scale subresource, without a resourceVersion: the update is unconditional, so the
    // deployment controller writing status meanwhile cannot make it a 409 Conflict.
    await apps.replaceNamespacedDeploymentScale({
      namespace: "shop",
      name: "web",
      body: { metadata: { name: "web", namespace: "shop" }, spec: { replicas: 0 } },
    });
    await waitFor(
      "every pod terminating or gone",
      async () => (await list()).every((p) => p.metadata?.deletionTimestamp),
      60_000,
      250,
    );
    for (const pod of await list())
      await core
        .deleteNamespacedPod({ namespace: "shop", name: pod.metadata?.name as string, gracePeriodSeconds: 0 })
        .catch(() => undefined);
    await waitFor(
      "every pod's port released",
      async () => {
        const left = [...(await portsOf()).keys()].filter((name) => name.endsWith(".shop"));
        return left.length === 0;
      },
      30_000,
    ).catch(() => undefined);
    t.same(
      [...(await portsOf()).keys()].filter((name) => name.endsWith(".shop")),
      [],
      "no port left for the pods",
    );
  },
);
