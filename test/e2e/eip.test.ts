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
  /** NAT rows on `router` (the cluster router routes them; the claims router only holds addresses). */
  const natRows = async (router = "ovn-cluster") => {
    const [nat, on] = await nb.transact(NB, [
      op.select("NAT", [], ["_uuid", "type", "external_ip", "logical_ip", "external_ids"]),
      op.select("Logical_Router", [["name", "==", router]], ["nat"]),
    ]);
    const linked = new Set(((on?.rows?.[0]?.nat as string[] | undefined) ?? []).map(String));
    return (nat?.rows ?? [])
      .filter((r) => linked.has(String(r._uuid)))
      .map(
        (r) =>
          `${String(r.type)} ${String(r.external_ip)} ${String(r.logical_ip)} ${(r.external_ids as Record<string, string>)["ovn-admission.io/pod"]}`,
      );
  };
  /** Waits until the rows on `router` are `expected` (they follow the stored pod, milliseconds after it is stored). */
  const rowsBecome = async (expected: string[], what: string, router = "ovn-cluster") => {
    let seen: string[] = [];
    await waitFor(what, async () => {
      seen = await natRows(router);
      return JSON.stringify(seen) === JSON.stringify(expected);
    }).catch(() => undefined);
    t.same(seen, expected, what);
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

  // The gateway node as the API server stores it: its Open_vSwitch is only reached through it.
  await core.createNode({ body: { metadata: { name: "kube-ovn-worker" } } });
  await waitFor(
    "the view to have the gateway node",
    () => s.service.view.node("kube-ovn-worker") !== undefined,
  );
  await core.createNamespacedConfigMap({ namespace: "kube-system", body: configMap({ ...SEED_GATEWAY }) });
  const gatewayPort = async () => {
    const [port] = await nb.transact(NB, [
      op.select("Logical_Router_Port", [["name", "==", "ovn-cluster-external"]], ["mac", "networks"]),
    ]);
    return port?.rows;
  };
  await waitFor(
    "the gateway to be programmed from the stored ConfigMap",
    async () => ((await gatewayPort())?.length ?? 0) > 0,
  );
  t.same(
    await gatewayPort(),
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
  await rowsBecome(
    ["dnat_and_snat 172.56.0.233 10.16.0.9 shop/pod-a"],
    "the NAT row is written from the stored pod",
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
  t.same(await natRows("ovn-admission-claims"), [], "not even a claim");

  // The seed's EIP change, without `kubectl annotate pod ... ovn.kubernetes.io/routed-`.
  const current = await core.readNamespacedPod({ namespace: "shop", name: "pod-a" });
  current.metadata!.annotations![EIP] = "172.56.0.221";
  const updated = await core.replaceNamespacedPod({ namespace: "shop", name: "pod-a", body: current });
  t.equal(updated.metadata?.annotations?.[ROUTED], undefined, "routed dropped without the user touching it");
  await rowsBecome(["dnat_and_snat 172.56.0.221 10.16.0.9 shop/pod-a"], "the row moved");
  await routed("pod-a to be routed again");
  t.pass("routed again once the row moved");

  // Deleted: the row goes when the API server removes the pod (not at the DELETE admission).
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
  t.match(metrics, /ovn_admission_programmed_total\{what="nat",result="ok"\} [1-9]/);

  // An IPAM that sets the address after creation (Kube-OVN's controller does): the EIP is held from the
  // CREATE, and the row comes with the stored UPDATE that brings the IP.
  await core.createNamespacedPod({ namespace: "shop", body: pod("pod-d", { [EIP]: "172.56.0.250" }) });
  t.same(await natRows(), [], "no row before the pod has its IP");
  t.same(
    await natRows("ovn-admission-claims"),
    ["dnat_and_snat 172.56.0.250 0.0.0.0 shop/pod-d"],
    "but the address is held",
  );
  const unaddressed = await core.readNamespacedPod({ namespace: "shop", name: "pod-d" });
  unaddressed.metadata!.annotations![IP] = "10.16.0.12";
  await core.replaceNamespacedPod({ namespace: "shop", name: "pod-d", body: unaddressed });
  await rowsBecome(["dnat_and_snat 172.56.0.250 10.16.0.12 shop/pod-d"], "written when the IP arrives");
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
  const externalSwitch = async () => {
    const [after] = await nb.transact(NB, [
      op.select("Logical_Switch", [["name", "==", "external"]], ["name"]),
    ]);
    return after?.rows ?? [];
  };
  await waitFor("the gateway to be removed", async () => (await externalSwitch()).length === 0).catch(
    () => undefined,
  );
  t.same(await externalSwitch(), [], "the external switch is gone");
});
