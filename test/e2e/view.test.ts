/**
 * The cluster view against a real kube-apiserver, as the identity the
 * manifests' RBAC describes: it syncs, follows changes, survives a lost
 * watch, and relists when its resourceVersion is compacted away.
 */
import t from "tap";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { startInformers } from "../../cluster/informers.js";
import { Reflector } from "../../cluster/reflector.js";
import { ClusterState } from "../../cluster/state.js";
import { kubeFor, manifestsRbacKubeconfig, type KubeApi } from "../harness/kube.js";
import { waitFor } from "../harness/wait.js";

const log = pino({ level: "silent" });
const USER = "ovn-admission-e2e";

/** The manifests' roles, bound to a user whose certificate the test holds. */
async function rbacLimitedKubeConfig(kube: KubeApi): Promise<KubeConfig> {
  const config = new KubeConfig();
  config.loadFromFile(await manifestsRbacKubeconfig(kube, USER));
  return config;
}

const pod = (name: string, annotations: Record<string, string>, nodeName = "node-1") => ({
  metadata: { name, annotations },
  spec: { nodeName, containers: [{ name: "c", image: "registry.example.com/app:1" }] },
});

t.test(
  "the view syncs with only the manifests' RBAC, follows changes, and survives a restarted API server",
  async (t) => {
    const kube = await kubeFor(t);
    const admin = kube.kubeConfig.makeApiClient(CoreV1Api);
    await admin.createNamespace({
      body: { metadata: { name: "shop", labels: { "ovn-admission.io/policy": "warn" } } },
    });
    await admin.createNamespace({ body: { metadata: { name: "kube-system" } } }).catch(() => undefined);
    await admin.createNode({
      body: {
        metadata: {
          name: "node-1",
          annotations: { "ovn.kubernetes.io/node_networks": '{"storage":"10.10.10.1"}' },
        },
      },
    });
    await admin.createNamespacedPod({
      namespace: "shop",
      body: pod("web-0", { "ovn.kubernetes.io/eip": "172.56.0.10" }),
    });
    await kube.createSubnet("storage", {
      cidrBlock: "10.66.0.0/16",
      nodeNetwork: "storage",
      namespaces: ["shop"],
    });
    await admin.createNamespacedConfigMap({
      namespace: "kube-system",
      body: {
        metadata: { name: "ovn-external-gw-config" },
        data: { "enable-external-gw": "true", type: "centralized" },
      },
    });
    await admin.createNamespacedConfigMap({
      namespace: "kube-system",
      body: { metadata: { name: "unrelated" }, data: { a: "b" } },
    });

    const informers = startInformers(await rbacLimitedKubeConfig(kube), log);
    t.teardown(() => informers.stop());
    await informers.synced;
    const view = informers.state;
    t.equal(view.synced, true, "synced with list and watch only");
    t.equal(view.namespace("shop")?.labels["ovn-admission.io/policy"], "warn");
    t.same(view.nodesWithPlane("storage"), ["node-1"]);
    t.same(
      view.podsWithEip("172.56.0.10").map((p) => p.key),
      ["shop/web-0"],
    );
    t.same(
      view.subnetsOfNamespace("shop").map((s) => s.name),
      ["storage"],
    );
    t.same(view.gatewayConfig()?.data, { "enable-external-gw": "true", type: "centralized" });
    t.equal(view.sizes().ConfigMap, 1, "only the gateway ConfigMap is watched");

    // Changes arrive through the watch.
    const current = await admin.readNamespacedPod({ namespace: "shop", name: "web-0" });
    current.metadata!.annotations!["ovn.kubernetes.io/eip"] = "172.56.0.11";
    await admin.replaceNamespacedPod({ namespace: "shop", name: "web-0", body: current });
    await waitFor("EIP moved in the view", () => view.podsWithEip("172.56.0.11").length === 1);
    t.same(view.podsWithEip("172.56.0.10"), [], "the old EIP is free in the view");
    await admin.deleteNamespacedPod({ namespace: "shop", name: "web-0", gracePeriodSeconds: 0 });
    await waitFor("pod gone", () => view.pod("shop", "web-0") === undefined);

    // Every watch is cut; the view notices nothing lost once the API server is back.
    await kube.restartApiServer();
    await admin.createNamespacedPod({
      namespace: "shop",
      body: pod("web-1", { "ovn.kubernetes.io/snat": "172.56.0.20" }),
    });
    await waitFor(
      "pod created after the restart",
      () => view.podsWithSnat("172.56.0.20").length === 1,
      30_000,
    );
    t.pass("a lost watch recovered by itself");
  },
);

t.test("a compacted resourceVersion gives 410 Gone and the view lists again", async (t) => {
  const kube = await kubeFor(t, { watchCache: false });
  const admin = kube.kubeConfig.makeApiClient(CoreV1Api);
  await admin.createNamespace({ body: { metadata: { name: "shop" } } });
  const state = new ClusterState(["Pod"]);
  const first = new Reflector(kube.kubeConfig, { kind: "Pod", path: "/api/v1/pods" }, state, log);
  await first.start();
  const seen = first.version;
  first.stop();

  // While nobody watches: pods come and go, and etcd forgets the history.
  for (let i = 0; i < 5; i++) await admin.createNamespacedPod({ namespace: "shop", body: pod(`p-${i}`, {}) });
  await admin.deleteNamespacedPod({ namespace: "shop", name: "p-0", gracePeriodSeconds: 0 });
  await kube.compact();

  const second = new Reflector(kube.kubeConfig, { kind: "Pod", path: "/api/v1/pods" }, state, log);
  t.teardown(() => second.stop());
  second.resumeFrom(seen);
  await waitFor("relist after 410", () => second.lists === 1, 15_000);
  await waitFor("view has the pods", () => state.sizes().Pod === 4);
  t.same(
    ["p-1", "p-2", "p-3", "p-4"].map((n) => state.pod("shop", n)?.name),
    ["p-1", "p-2", "p-3", "p-4"],
  );
  t.equal(state.pod("shop", "p-0"), undefined);
});
