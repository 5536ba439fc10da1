/**
 * Seed 002's model as a network a cluster runs on, by packets: the service
 * makes the cluster router and join switch itself (master-init), each node's
 * management port `k8s-<node>` (minion-init), and a load balancer per Service
 * from its stored EndpointSlices (the watcher). Through a real kube-apiserver,
 * kube-controller-manager (deployments, replica sets, endpoint slices) and
 * kube-scheduler, set up with kubectl apply; the test plays the kubelets
 * (pod status) and the CNI (plugging interfaces), as no kubelet runs here.
 */
import t from "tap";
import type { V1Pod } from "@kubernetes/client-node";
import { op } from "ovsdb-client";
import { CONVERGE_MS, type DataplaneNode } from "../harness/dataplane.js";
import { readyNodes } from "../harness/kube.js";
import { waitFor } from "../harness/wait.js";
import { dataplaneCluster, ipv4Flow, ovnKubernetesPod } from "./cluster.js";
import { OVN_KUBERNETES } from "../fixtures/index.js";
import { managementPortOf } from "../../domain/topology.js";
import { firstHostOf, macOfAddress } from "../../domain/addresses.js";

const NB = "OVN_Northbound";
const NODES = { "node-1": "192.0.2.11", "node-2": "192.0.2.12" };

const APP = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: docker.io/library/nginx:alpine
          ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
`;

interface Addressed {
  name: string;
  node: string;
  ip: string;
  mac: string;
}

const addressOf = (pod: V1Pod): Addressed => {
  const ovn = JSON.parse(pod.metadata?.annotations?.ovn ?? "{}") as {
    ip_address?: string;
    mac_address?: string;
  };
  return {
    name: pod.metadata?.name ?? "",
    node: pod.spec?.nodeName ?? "",
    ip: (ovn.ip_address ?? "").split("/")[0] as string,
    mac: ovn.mac_address ?? "",
  };
};

t.test(
  "management ports reach pods; a ClusterIP Service is load-balanced to its ready endpoints, and follows a scale to 1",
  async (t) => {
    const { dp, kube, core, s } = await dataplaneCluster(
      t,
      NODES,
      [...OVN_KUBERNETES, "--reconcile-interval", "2"],
      {
        kube: { controllers: true },
      },
    );
    const nb = s.service.northbound;
    const byName = (name: string) => dp.nodes.find((n) => n.name === name) as DataplaneNode;
    const [routers] = await nb.transact(NB, [
      op.select("Logical_Router", [["name", "==", "ovn_cluster_router"]], ["name"]),
    ]);
    t.equal(routers?.rows?.length, 1, "master-init: the service made ovn_cluster_router");

    // The workload first, the nodes after: a pod that waits for a node is scheduled when one turns Ready
    // (the other order was seen to leave pods a minute in the scheduler's back-off).
    await core.createNamespace({ body: { metadata: { name: "shop" } } });
    await kube.kubectl(["apply", "-f", "-"], APP);
    await readyNodes(core, NODES);
    const subnets: Record<string, string> = {};
    for (const name of Object.keys(NODES)) {
      const node = await core.readNode({ name });
      subnets[name] = node.metadata?.annotations?.ovn_host_subnet as string;
      t.equal(
        node.metadata?.annotations?.["k8s.ovn.org/node-mgmt-port-mac-address"],
        managementPortOf(subnets[name]).mac,
        `${name}: its management port's MAC annotated for the node agent`,
      );
      // ovnkube-node plugs ovn-k8s-mp0 as the management port's interface.
      await dp.plug(byName(name), "ovn-k8s-mp0", `k8s-${name}`);
    }
    for (const name of Object.keys(NODES)) await dp.bound(`k8s-${name}`, byName(name));
    t.pass("each node's management port is bound on its chassis");

    const listed = async () =>
      (await core.listNamespacedPod({ namespace: "shop", labelSelector: "app=web" })).items.filter(
        (p) => !p.metadata?.deletionTimestamp,
      );
    const pods = await waitFor(
      "3 pods bound and addressed",
      async () => {
        const items = (await listed()).filter((p) => p.spec?.nodeName && p.metadata?.annotations?.ovn);
        return items.length === 3 ? items : undefined;
      },
      120_000,
    );
    const webs = pods.map(addressOf);
    // As the CNI and the kubelet: plug each pod, then report it running and ready with its address.
    for (const [i, web] of webs.entries()) {
      await dp.plug(byName(web.node), `web${i}`, `shop_${web.name}`, {
        attached_mac: web.mac,
        ip_address: web.ip,
      });
      const pod = await core.readNamespacedPod({ namespace: "shop", name: web.name });
      pod.status = {
        phase: "Running",
        podIP: web.ip,
        podIPs: [{ ip: web.ip }],
        conditions: [
          { type: "Ready", status: "True" },
          { type: "ContainersReady", status: "True" },
        ],
      };
      await core.replaceNamespacedPodStatus({ namespace: "shop", name: web.name, body: pod });
    }
    const service = await core.readNamespacedService({ namespace: "shop", name: "web" });
    const vip = service.spec?.clusterIP as string;

    const client = await ovnKubernetesPod(core, dp, byName("node-1"), "shop", "client");
    const routerMac = macOfAddress(firstHostOf(subnets["node-1"] as string));
    const toVip = `${ipv4Flow("shop_client", client, { ip: vip }, routerMac)} && tcp && tcp.src == 40000 && tcp.dst == 80`;
    const all = webs.map((w) => `${w.ip}:8080`).sort();
    const balanced = await waitFor(
      "the Service's load balancer with its three endpoints",
      async () => {
        const lb = await dp.loadBalanced("node-1", toVip);
        return JSON.stringify(lb.backends) === JSON.stringify(all) ? lb : undefined;
      },
      CONVERGE_MS,
    );
    t.same(balanced.backends, all, `${vip}:80 is balanced over the three endpoints (ct_lb)`);
    t.ok(
      webs.some((w) => `shop_${w.name}` === balanced.output),
      `the packet is delivered to one of them (${balanced.output})`,
    );

    // The node reaches its pods (kubelet's probes): from node-1's management port to a pod on node-2.
    const management = managementPortOf(subnets["node-1"] as string);
    const remote = webs.find((w) => w.node === "node-2") ?? webs[0];
    const fromHost = await dp.outputs(
      "node-1",
      ipv4Flow("k8s-node-1", management, remote as Addressed, routerMac),
    );
    t.equal(
      fromHost.at(-1),
      `shop_${remote?.name}`,
      "node-1's management port reaches a pod on another node",
    );
    const toOwnNode = await dp.outputs(
      "node-1",
      ipv4Flow("shop_client", client, { ip: NODES["node-1"] }, routerMac),
    );
    t.equal(
      toOwnNode.at(-1),
      "k8s-node-1",
      "a pod reaches its own node's address through the management port",
    );

    // Scaled to 1: the two pods the replica set deletes leave the backends.
    await kube.kubectl(["scale", "-n", "shop", "deployment/web", "--replicas=1"]);
    const [kept] = await waitFor(
      "two pods deleted",
      async () => {
        const left = await listed();
        return left.length === 1 ? left : undefined;
      },
      60_000,
    );
    // As kubelets finishing the deletions.
    for (const web of webs)
      if (web.name !== kept?.metadata?.name)
        await core
          .deleteNamespacedPod({ namespace: "shop", name: web.name, gracePeriodSeconds: 0 })
          .catch(() => undefined);
    const one = webs.find((w) => w.name === kept?.metadata?.name) as Addressed;
    const after = await waitFor(
      "the load balancer to follow the scale",
      async () => {
        const lb = await dp.loadBalanced("node-1", toVip);
        return lb.backends.length === 1 ? lb : undefined;
      },
      CONVERGE_MS,
    );
    t.same(after.backends, [`${one.ip}:8080`], "only the remaining endpoint is a backend");
    t.equal(after.output, `shop_${one.name}`, "and the packet goes to it");

    await core.deleteNamespacedService({ namespace: "shop", name: "web" });
    const webBalancers = async () => {
      const [lbs] = await nb.transact(NB, [
        op.select("Load_Balancer", [["name", "==", "Service_shop/web_TCP"]], ["name"]),
      ]);
      return lbs?.rows?.length ?? 0;
    };
    await waitFor(
      "the deleted Service's load balancer to go",
      async () => (await webBalancers()) === 0,
      CONVERGE_MS,
    );
    t.pass("a deleted Service's load balancer is removed");
  },
);
