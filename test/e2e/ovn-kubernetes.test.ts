/**
 * ovn-kubernetes mode (seed 002) through a real kube-apiserver: each Node
 * gets a subnet of --cluster-ip-subnet in `ovn_host_subnet` and its own
 * logical switch with a router port; a pod gets an address of its node's
 * subnet, the `ovn` annotation, and the port `<namespace>_<pod>`.
 */
import t, { type Test } from "tap";
import { CoreV1Api } from "@kubernetes/client-node";
import { op } from "ovsdb-client";
import { apiMessage, kubeFor } from "../harness/kube.js";
import { serviceFor } from "../harness/service.js";
import { waitFor } from "../harness/wait.js";
import { OVN_KUBERNETES } from "../fixtures/index.js";

const NB = "OVN_Northbound";

/** A real kube-apiserver and the service in seed 002's model, its webhooks registered. */
async function clusterFor(t: Test, extra: string[] = []) {
  const kube = await kubeFor(t);
  const s = await serviceFor(t, [
    "--kubeconfig",
    kube.kubeconfigFile,
    ...OVN_KUBERNETES,
    "--lease-namespace",
    "default",
    ...extra,
  ]);
  await kube.registerWebhooks(s.service.url, s.service.caFile as string);
  return { kube, s, core: kube.kubeConfig.makeApiClient(CoreV1Api) };
}

t.test("node subnets from --cluster-ip-subnet, pods addressed from their node's", async (t) => {
  const { s, core } = await clusterFor(t, ["--reconcile-interval", "1", "--nat-release-grace", "2"]);
  const nb = s.service.northbound;

  // Nodes as kubelets register them: seed 002's master and a minion.
  const created = await waitFor("the node webhook to answer with a subnet", async () => {
    const node = await core
      .createNode({ body: { metadata: { name: "kube-master" } } })
      .catch(() => undefined);
    return node?.metadata?.annotations?.ovn_host_subnet ? node : undefined;
  });
  t.equal(created.metadata?.annotations?.ovn_host_subnet, "192.168.0.0/24");
  const minion = await core.createNode({ body: { metadata: { name: "kube-minion1" } } });
  t.equal(
    minion.metadata?.annotations?.ovn_host_subnet,
    "192.168.1.0/24",
    "the next block for the next node",
  );

  const routerPort = async (name: string) => {
    const [found] = await nb.transact(NB, [
      op.select("Logical_Router_Port", [["name", "==", name]], ["networks"]),
    ]);
    return found?.rows?.[0]?.networks;
  };
  await waitFor(
    "the minion's router port",
    async () => (await routerPort("rtos-kube-minion1")) !== undefined,
  );
  t.same(
    await routerPort("rtos-kube-minion1"),
    ["192.168.1.1/24"],
    "the node switch's gateway on the cluster router",
  );
  t.equal(
    minion.metadata?.annotations?.["k8s.ovn.org/node-mgmt-port-mac-address"],
    "0a:58:c0:a8:01:02",
    "the management port's MAC, for the node agent",
  );
  const managementPort = async () => {
    const [found] = await nb.transact(NB, [
      op.select("Logical_Switch_Port", [["name", "==", "k8s-kube-minion1"]], ["addresses"]),
    ]);
    return found?.rows?.[0]?.addresses;
  };
  t.same(
    await waitFor("the minion's management port", managementPort),
    ["0a:58:c0:a8:01:02 192.168.1.2"],
    "k8s-kube-minion1: the node subnet's second address",
  );

  const changed = await core.readNode({ name: "kube-minion1" });
  changed.metadata!.annotations!.ovn_host_subnet = "192.168.9.0/24";
  t.match(
    await core.replaceNode({ name: "kube-minion1", body: changed }).then(() => "replaced", apiMessage),
    /ovn_host_subnet"\]: node kube-minion1's subnet is allocated and never changes \(was 192\.168\.1\.0\/24/,
  );

  await core.createNamespace({ body: { metadata: { name: "shop" } } });
  await waitFor(
    "the view to have the minion's subnet",
    () => s.service.view.node("kube-minion1")?.annotations.ovn_host_subnet !== undefined,
  );
  const pod = await core.createNamespacedPod({
    namespace: "shop",
    body: {
      metadata: { name: "web" },
      spec: { nodeName: "kube-minion1", containers: [{ name: "c", image: "i" }] },
    },
  });
  t.equal(
    pod.metadata?.annotations?.ovn,
    '{"ip_address":"192.168.1.3/24","mac_address":"0a:58:c0:a8:01:03","gateway_ip":"192.168.1.1"}',
    "seed 002's ovn annotation: an address of the node's subnet (.1 its router's, .2 its management port's)",
  );
  const portOn = async () => {
    const [sw, ports] = await nb.transact(NB, [
      op.select("Logical_Switch", [["name", "==", "kube-minion1"]], ["ports"]),
      op.select("Logical_Switch_Port", [["name", "==", "shop_web"]], ["_uuid", "addresses", "enabled"]),
    ]);
    const port = ports?.rows?.[0];
    const on = ((sw?.rows?.[0]?.ports as string[] | undefined) ?? []).map(String);
    return port && on.includes(String(port._uuid)) && port.enabled !== false ? port.addresses : undefined;
  };
  await waitFor("the pod's port on its node's switch", async () => (await portOn()) !== undefined).catch(
    () => undefined,
  );
  t.same(await portOn(), ["0a:58:c0:a8:01:03 192.168.1.3"], "port shop_web on switch kube-minion1, enabled");

  // Gone: the pod's port, then the node's switch.
  await core.deleteNamespacedPod({ namespace: "shop", name: "web", gracePeriodSeconds: 0 });
  await waitFor("the port released", async () => (await portOn()) === undefined);
  await core.deleteNode({ name: "kube-minion1" });
  await waitFor("the node's switch released", async () => {
    const [found] = await nb.transact(NB, [
      op.select("Logical_Switch", [["name", "==", "kube-minion1"]], ["name"]),
    ]);
    return (found?.rows?.length ?? 1) === 0;
  }).catch(() => undefined);
  const [left] = await nb.transact(NB, [
    op.select("Logical_Switch", [["name", "==", "kube-minion1"]], ["name"]),
    op.select("Logical_Router_Port", [["name", "==", "rtos-kube-minion1"]], ["name"]),
  ]);
  t.same(left?.rows, [], "the deleted node's switch and router port are gone");
  t.equal(await managementPort(), undefined, "and its management port");
});

t.test("a write that keeps failing is a Warning Event on its object, once per window", async (t) => {
  const { kube, s, core } = await clusterFor(t);
  // A gateway node whose Open_vSwitch database cannot be reached (no InternalIP): its chassis is unknown.
  const declared = {
    "physical-interface": "eth1",
    "physical-ip": "10.33.74.138/24",
    "default-gw": "10.33.74.253",
  };
  await waitFor("the node webhook to answer", () =>
    core
      .createNode({
        body: {
          metadata: { name: "gw-1", annotations: { "ovn-admission.io/gateway": JSON.stringify(declared) } },
        },
      })
      .then(
        () => true,
        () => false,
      ),
  );
  const warnings = async () =>
    (
      await core.listNamespacedEvent({ namespace: "default", fieldSelector: "involvedObject.name=gw-1" })
    ).items.filter((e) => e.reason === "ProgrammingFailed");
  const [first] = await waitFor("the Event", async () =>
    (await warnings()).length ? await warnings() : undefined,
  );
  t.equal(first?.type, "Warning");
  t.equal(first?.involvedObject.kind, "Node");
  t.match(first?.message, /could not program the gateway-router of this Node in OVN \(retrying\): .*gw-1/);
  t.match(await kube.kubectl(["describe", "node", "gw-1"]), /ProgrammingFailed/, "kubectl describe shows it");
  // Two more failures of the same write within the window (the declaration changed twice): still one Event.
  for (const gateway of ["10.33.74.254", "10.33.74.252"]) {
    const node = await core.readNode({ name: "gw-1" });
    node.metadata!.annotations!["ovn-admission.io/gateway"] = JSON.stringify({
      ...declared,
      "default-gw": gateway,
    });
    await core.replaceNode({ name: "gw-1", body: node });
  }
  await waitFor(
    "the node's later changes to be programmed (and fail)",
    () => s.logs.filter((l) => l.event === "program-failed" && l.what === "gateway-router").length >= 3,
  );
  t.equal((await warnings()).length, 1, "rate-limited: one Event per object and reason per minute");
});
