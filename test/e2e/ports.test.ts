/**
 * Pod addresses and logical switch ports through a real kube-apiserver: the
 * Subnet becomes a logical switch, a pod gets its address when its node is
 * known (spec.nodeName at CREATE, or its Binding), the stored pod's port is
 * programmed in a real OVN Northbound, and everything goes with the pod.
 */
import t from "tap";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { op } from "ovsdb-client";
import { apiMessage, kubeFor } from "../harness/kube.js";
import { serviceFor } from "../harness/service.js";
import { waitFor } from "../harness/wait.js";

const NB = "OVN_Northbound";
const A = (key: string) => `ovn.kubernetes.io/${key}`;

t.test("addresses at CREATE and at binding, ports from the stored pods, released with them", async (t) => {
  const kube = await kubeFor(t);
  const s = await serviceFor(t, [
    "--kubeconfig",
    kube.kubeconfigFile,
    "--lease-namespace",
    "default",
    "--reconcile-interval",
    "1",
    "--nat-release-grace",
    "2",
  ]);
  await kube.registerWebhooks(s.service.url, s.service.caFile as string);
  const core = kube.kubeConfig.makeApiClient(CoreV1Api);
  const nb = s.service.northbound;
  /** "name enabled addresses" of the ports on a switch. */
  const portsOn = async (ls: string): Promise<string[]> => {
    const [sw, ports] = await nb.transact(NB, [
      op.select("Logical_Switch", [["name", "==", ls]], ["ports"]),
      op.select("Logical_Switch_Port", [], ["_uuid", "name", "addresses", "enabled"]),
    ]);
    const on = new Set(((sw?.rows?.[0]?.ports as string[] | undefined) ?? []).map(String));
    return (ports?.rows ?? [])
      .filter((p) => on.has(String(p._uuid)))
      .map(
        (p) =>
          `${String(p.name)} ${p.enabled === false ? "disabled" : "enabled"} ${((p.addresses as string[]) ?? []).join(",")}`,
      )
      .sort();
  };
  const becomes = async (ls: string, expected: string[], what: string) => {
    await waitFor(what, async () => JSON.stringify(await portsOn(ls)) === JSON.stringify(expected)).catch(
      () => undefined,
    );
    t.same(await portsOn(ls), expected, what);
  };

  await kube.createSubnet("ovn-default", {
    cidrBlock: "10.16.0.0/24",
    gateway: "10.16.0.1",
    excludeIps: ["10.16.0.2..10.16.0.5"],
    default: true,
  });
  await becomes(
    "ovn-default",
    ["ovn-default-ovn-cluster enabled router"],
    "the stored Subnet is a switch with its router port",
  );
  const [ls] = await nb.transact(NB, [
    op.select("Logical_Switch", [["name", "==", "ovn-default"]], ["other_config"]),
  ]);
  t.same(ls?.rows?.[0]?.other_config, {
    subnet: "10.16.0.0/24",
    exclude_ips: "10.16.0.1 10.16.0.2..10.16.0.5",
  });
  await waitFor("the view to have the subnet", () => s.service.view.subnet("ovn-default") !== undefined);

  await core.createNamespace({ body: { metadata: { name: "shop" } } });
  const pod = (
    name: string,
    extra: Partial<V1Pod["spec"]> = {},
    annotations: Record<string, string> = {},
  ): V1Pod => ({
    metadata: { name, annotations },
    spec: { containers: [{ name: "c", image: "i" }], ...extra },
  });

  // Placed at CREATE: the address comes back in the created pod.
  const placed = await core.createNamespacedPod({
    namespace: "shop",
    body: pod("placed", { nodeName: "node-1" }),
  });
  const a = placed.metadata?.annotations ?? {};
  t.same(
    [
      a[A("ip_address")],
      a[A("mac_address")],
      a[A("gateway")],
      a[A("cidr")],
      a[A("logical_switch")],
      a[A("allocated")],
      a.ovn,
    ],
    [
      "10.16.0.6",
      "0a:58:0a:10:00:06",
      "10.16.0.1",
      "10.16.0.0/24",
      "ovn-default",
      "true",
      '{"ip_address":"10.16.0.6/24","mac_address":"0a:58:0a:10:00:06","gateway_ip":"10.16.0.1"}',
    ],
    "the first address after the gateway and the excluded range",
  );
  await becomes(
    "ovn-default",
    ["ovn-default-ovn-cluster enabled router", "placed.shop enabled 0a:58:0a:10:00:06 10.16.0.6"],
    "the stored pod's port is on its subnet's switch",
  );

  // dryRun: the answer shows the address it would give; nothing is held.
  const dry = await core.createNamespacedPod({
    namespace: "shop",
    body: pod("dry", { nodeName: "node-1" }),
    dryRun: "All",
  });
  t.equal(dry.metadata?.annotations?.[A("ip_address")], "10.16.0.7", "dryRun answers the next address");
  t.same(await portsOn("ovn-admission-claims"), [], "and holds nothing");

  // Scheduled later: the Binding carries the address onto the pod.
  await core.createNamespacedPod({ namespace: "shop", body: pod("bound") });
  await waitFor("the view to have the pod", () => s.service.view.pod("shop", "bound") !== undefined);
  await core.createNamespacedPodBinding({
    namespace: "shop",
    name: "bound",
    body: { metadata: { name: "bound" }, target: { apiVersion: "v1", kind: "Node", name: "node-1" } },
  });
  const bound = await core.readNamespacedPod({ namespace: "shop", name: "bound" });
  t.equal(bound.spec?.nodeName, "node-1");
  t.equal(
    bound.metadata?.annotations?.[A("ip_address")],
    "10.16.0.7",
    "the Binding's annotations reached the pod",
  );
  await becomes(
    "ovn-default",
    [
      "bound.shop enabled 0a:58:0a:10:00:07 10.16.0.7",
      "ovn-default-ovn-cluster enabled router",
      "placed.shop enabled 0a:58:0a:10:00:06 10.16.0.6",
    ],
    "the bound pod's port",
  );

  // Asking for a held address, changing an allocated one, deleting a subnet in use: refused, with the reason.
  const twin = await core
    .createNamespacedPod({
      namespace: "shop",
      body: pod("twin", { nodeName: "node-1" }, { [A("ip_address")]: "10.16.0.6" }),
    })
    .then(() => "created", apiMessage);
  t.match(twin, /ip_address"\]: 10\.16\.0\.6 is already held by pod shop\/placed in subnet ovn-default/);
  const current = await core.readNamespacedPod({ namespace: "shop", name: "placed" });
  current.metadata!.annotations![A("ip_address")] = "10.16.0.99";
  const changed = await core
    .replaceNamespacedPod({ namespace: "shop", name: "placed", body: current })
    .then(() => "replaced", apiMessage);
  t.match(
    changed,
    /the pod's address is allocated and never changes \(was "10\.16\.0\.6", found "10\.16\.0\.99"\)/,
  );
  await waitFor(
    "the view to have both pods' addresses",
    () => s.service.view.podsInSubnet("ovn-default").length === 2,
  );
  const inUse = await kube.objects
    .delete({ apiVersion: "kubeovn.io/v1", kind: "Subnet", metadata: { name: "ovn-default" } })
    .then(() => "deleted", apiMessage);
  t.match(inUse, /subnet ovn-default still has 2 pods with addresses in it \(shop\/bound, shop\/placed\)/);

  // Deleted pods: their ports go; then the emptied subnet can go, and its rows with it. (No kubelet runs
  // here to finish a bound pod's graceful deletion, so they go at once, as a kubelet would have them go.)
  for (const name of ["placed", "bound"])
    await core.deleteNamespacedPod({ namespace: "shop", name, gracePeriodSeconds: 0 });
  await becomes(
    "ovn-default",
    ["ovn-default-ovn-cluster enabled router"],
    "the deleted pods' ports are released",
  );
  await waitFor(
    "the view to see the pods gone",
    () => s.service.view.podsInSubnet("ovn-default").length === 0,
  );
  await kube.objects.delete({
    apiVersion: "kubeovn.io/v1",
    kind: "Subnet",
    metadata: { name: "ovn-default" },
  });
  await waitFor("the switch to be removed", async () => {
    const [found] = await nb.transact(NB, [
      op.select("Logical_Switch", [["name", "==", "ovn-default"]], ["name"]),
    ]);
    return (found?.rows?.length ?? 1) === 0;
  }).catch(() => undefined);
  const [left] = await nb.transact(NB, [
    op.select("Logical_Switch", [["name", "==", "ovn-default"]], ["name"]),
    op.select("Logical_Router_Port", [["name", "==", "ovn-cluster-ovn-default"]], ["name"]),
  ]);
  t.same(left?.rows, [], "the emptied subnet's switch is removed");
  t.equal((await portsOn("ovn-admission-claims")).length, 0, "no claim is left behind");
});
