/**
 * EIP and SNAT end to end: a real kube-apiserver calls our webhooks for the
 * gateway ConfigMap and for pods; the service's OVN Northbound (a real
 * ovsdb-server) gets the gateway and the NAT rows; `routed` follows.
 */
import t from "tap";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { op } from "ovsdb-client";
import { nodesFor, type SimulatedNode } from "../harness/index.js";
import { apiMessage, kubeFor } from "../harness/kube.js";
import { serviceFor } from "../harness/service.js";
import { waitFor } from "../harness/wait.js";
import { SEED_GATEWAY } from "../fixtures/index.js";

const NB = "OVN_Northbound";
const EIP = "ovn.kubernetes.io/eip";
const IP = "ovn.kubernetes.io/ip_address";
const ROUTED = "ovn.kubernetes.io/routed";

const pod = (name: string, annotations: Record<string, string>): V1Pod => ({
  metadata: { name, namespace: "shop", annotations },
  spec: { containers: [{ name: "web", image: "docker.io/library/nginx:alpine" }] },
});

t.test("the gateway ConfigMap and pods' EIPs through a real API server", async (t) => {
  const [worker] = (await nodesFor(t, ["kube-ovn-worker"])) as [SimulatedNode];
  const kube = await kubeFor(t);
  const s = await serviceFor(t, [
    "--kubeconfig",
    kube.kubeconfigFile,
    "--node-ovsdb-override",
    `kube-ovn-worker=${worker.ovs.unixRemote}`,
    "--reconcile-interval",
    "0.5",
    "--nat-release-grace",
    "0.5",
    "--lease-namespace",
    "default",
  ]);
  await kube.registerWebhooks(s.service.url, s.service.caFile as string);
  const core = kube.kubeConfig.makeApiClient(CoreV1Api);
  const nb = s.service.northbound;
  const natRows = async () => {
    const [nat] = await nb.transact(NB, [
      op.select("NAT", [], ["type", "external_ip", "logical_ip", "external_ids"]),
    ]);
    return (nat?.rows ?? []).map(
      (r) =>
        `${String(r.type)} ${String(r.external_ip)} ${String(r.logical_ip)} ${(r.external_ids as Record<string, string>)["ovn-admission.io/pod"]}`,
    );
  };
  const routed = (what: string, name = "pod-a") =>
    waitFor(what, async () => {
      const pod = await core.readNamespacedPod({ namespace: "shop", name });
      return pod.metadata?.annotations?.[ROUTED] === "true" || undefined;
    });
  // Kubernetes 1.21+ labels every namespace with its name; 1.20 does not yet.
  const kubeSystem = await core.readNamespace({ name: "kube-system" });
  kubeSystem.metadata!.labels = {
    ...kubeSystem.metadata?.labels,
    "kubernetes.io/metadata.name": "kube-system",
  };
  await core.replaceNamespace({ name: "kube-system", body: kubeSystem });

  const configMap = (data: Record<string, string>) => ({
    metadata: { name: "ovn-external-gw-config", namespace: "kube-system" },
    data,
  });
  // The seed's own typo, until our webhook answers (configurations are noticed about a second after creation).
  const typo = await waitFor("our ConfigMap webhook to answer", async () => {
    try {
      await core.createNamespacedConfigMap({
        namespace: "kube-system",
        body: configMap({ ...SEED_GATEWAY, type: "centrailized" }),
        dryRun: "All",
      });
      return undefined;
    } catch (err) {
      return apiMessage(err);
    }
  });
  t.equal(
    typo,
    `admission webhook "gateway-config.validate.ovn-admission.io" denied the request: ConfigMap kube-system/ovn-external-gw-config: data["type"]: did you mean "centralized"? expected "centralized" or "distributed", found "centrailized"`,
  );

  await core.createNamespacedConfigMap({ namespace: "kube-system", body: configMap({ ...SEED_GATEWAY }) });
  const [port] = await nb.transact(NB, [
    op.select("Logical_Router_Port", [["name", "==", "ovn-cluster-external"]], ["mac", "networks"]),
  ]);
  t.same(
    port?.rows,
    [{ mac: "16:52:f3:13:6a:25", networks: ["172.56.0.254/16"] }],
    "the gateway is programmed",
  );
  await waitFor(
    "the view to see the ConfigMap",
    () => s.service.view.gatewayConfig() !== undefined || undefined,
  );

  await core.createNamespace({ body: { metadata: { name: "shop" } } });
  await core.createNamespacedPod({
    namespace: "shop",
    body: pod("pod-a", { [EIP]: "172.56.0.233", [IP]: "10.16.0.9" }),
  });
  t.same(
    await natRows(),
    ["dnat_and_snat 172.56.0.233 10.16.0.9 shop/pod-a"],
    "the NAT row is written at admission",
  );
  await routed("pod-a to be marked routed");
  t.pass("routed set once the row is in place");

  const taken = await core
    .createNamespacedPod({
      namespace: "shop",
      body: pod("pod-b", { [EIP]: "172.56.0.233", [IP]: "10.16.0.10" }),
    })
    .then(() => "created", apiMessage);
  t.match(
    taken,
    /^admission webhook "validate\.ovn-admission\.io" denied the request: metadata\.annotations\["ovn\.kubernetes\.io\/eip"\]: 172\.56\.0\.233 .*EIP of pod shop\/pod-a$/,
  );

  const dry = await core.createNamespacedPod({
    namespace: "shop",
    body: pod("pod-c", { [EIP]: "172.56.0.240", [IP]: "10.16.0.11" }),
    dryRun: "All",
  });
  t.equal(dry.metadata?.name, "pod-c", "dryRun is admitted");
  t.same(await natRows(), ["dnat_and_snat 172.56.0.233 10.16.0.9 shop/pod-a"], "and writes nothing");

  // The seed's EIP change, without `kubectl annotate pod ... ovn.kubernetes.io/routed-`.
  const current = await core.readNamespacedPod({ namespace: "shop", name: "pod-a" });
  current.metadata!.annotations![EIP] = "172.56.0.221";
  const updated = await core.replaceNamespacedPod({ namespace: "shop", name: "pod-a", body: current });
  t.equal(updated.metadata?.annotations?.[ROUTED], undefined, "routed dropped without the user touching it");
  t.same(await natRows(), ["dnat_and_snat 172.56.0.221 10.16.0.9 shop/pod-a"], "the row moved");
  await routed("pod-a to be routed again");
  t.pass("routed again once the row moved");

  // Deleted: the reconciler releases the row (not the DELETE admission).
  await core.deleteNamespacedPod({ namespace: "shop", name: "pod-a" });
  await waitFor("the NAT row of the deleted pod to go", async () =>
    (await natRows()).length === 0 ? true : undefined,
  );
  t.pass("the deleted pod's row is gone");
  t.ok(
    s.logs.some((l) => l.event === "lease-acquired"),
    "the reconciler ran as the holder of the Lease",
  );
  const metrics = (await s.request("GET", "/metrics")).text;
  t.match(metrics, /ovn_admission_reconciler_leader 1/);
  t.match(metrics, /ovn_admission_nat_reconciled_total\{change="released"\} 1/);

  // An IPAM that sets the address after creation (Kube-OVN's controller does): the row comes with that UPDATE.
  await core.createNamespacedPod({ namespace: "shop", body: pod("pod-d", { [EIP]: "172.56.0.250" }) });
  t.same(await natRows(), [], "no row before the pod has its IP");
  const unaddressed = await core.readNamespacedPod({ namespace: "shop", name: "pod-d" });
  unaddressed.metadata!.annotations![IP] = "10.16.0.12";
  await core.replaceNamespacedPod({ namespace: "shop", name: "pod-d", body: unaddressed });
  t.same(
    await natRows(),
    ["dnat_and_snat 172.56.0.250 10.16.0.12 shop/pod-d"],
    "written when the IP arrives",
  );
  await routed("pod-d to be marked routed", "pod-d");

  // Disabled: exactly the gateway rows go; the cluster router stays.
  const current2 = await core.readNamespacedConfigMap({
    namespace: "kube-system",
    name: "ovn-external-gw-config",
  });
  current2.data = { ...current2.data, "enable-external-gw": "false" };
  await core.replaceNamespacedConfigMap({
    namespace: "kube-system",
    name: "ovn-external-gw-config",
    body: current2,
  });
  const [after] = await nb.transact(NB, [
    op.select("Logical_Switch", [["name", "==", "external"]], ["name"]),
    op.select("Logical_Router", [["name", "==", "ovn-cluster"]], ["ports"]),
  ]);
  t.same(after?.rows, [], "the external switch is gone");
});
