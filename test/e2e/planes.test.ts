/**
 * Network planes end to end: a real kube-apiserver calls our webhooks, and
 * each simulated node's real Open_vSwitch database follows its annotation.
 */
import t, { type Test } from "tap";
import { CoreV1Api, type V1Node, type V1Pod } from "@kubernetes/client-node";
import { encapIpsOf, nodesFor, type SimulatedNode } from "../harness/index.js";
import { apiMessage, kubeFor } from "../harness/kube.js";
import { serviceFor } from "../harness/service.js";
import { waitFor } from "../harness/wait.js";

const NN = "ovn.kubernetes.io/node_networks";

const encapIps = encapIpsOf;

/** Waits for the node's encap IPs to become `expected` (programmed from the stored Node), then asserts them. */
async function encapBecomes(t: Test, node: SimulatedNode, expected: string, what: string): Promise<void> {
  await waitFor(what, async () => (await encapIps(node)) === expected).catch(() => undefined);
  t.equal(await encapIps(node), expected, what);
}

const nodeBody = (name: string, ip: string, networks?: Record<string, string>): V1Node => ({
  metadata: { name, annotations: networks ? { [NN]: JSON.stringify(networks) } : {} },
  status: { addresses: [{ type: "InternalIP", address: ip }] },
});

t.test(
  "planes: nodes program their OVS, subnets and pods are checked, bindings record the encap IP",
  async (t) => {
    const [node1, node2] = (await nodesFor(t, ["node-1", "node-2"])) as [SimulatedNode, SimulatedNode];
    const kube = await kubeFor(t);
    const s = await serviceFor(t, [
      "--kubeconfig",
      kube.kubeconfigFile,
      "--node-ovsdb-override",
      `node-1=${node1.ovs.unixRemote};node-2=${node2.ovs.unixRemote}`,
      "--lease-namespace",
      "default",
    ]);
    await kube.registerWebhooks(s.service.url, s.service.caFile as string);
    const core = kube.kubeConfig.makeApiClient(CoreV1Api);

    // Webhook configurations are noticed about a second after creation: a node with a bad annotation tells when ours answer.
    const badMessage = await waitFor("our node webhook to answer", async () => {
      try {
        await core.createNode({
          body: nodeBody("probe", "192.168.1.9", { Storage: "10.10.10.9" }),
          dryRun: "All",
        });
        return undefined;
      } catch (err) {
        return apiMessage(err);
      }
    });
    t.match(
      badMessage,
      /metadata\.annotations\["ovn\.kubernetes\.io\/node_networks"\]: plane "Storage": expected a DNS label/,
      "a bad annotation is denied, naming the key and the value",
    );

    // A node declares a plane: labelled, and its Open_vSwitch follows.
    const created = await core.createNode({
      body: nodeBody("node-1", "192.168.1.1", { storage: "10.10.10.1" }),
    });
    t.equal(created.metadata?.labels?.["planes.ovn-admission.io/storage"], "true", "plane label added");
    await encapBecomes(t, node1, '"192.168.1.1,10.10.10.1"', "the stored node's plane reached OVS");
    await core.createNode({ body: nodeBody("node-2", "192.168.1.2") });

    // dryRun: same answer, nothing written to OVS.
    const withApp = await core.readNode({ name: "node-1" });
    withApp.metadata!.annotations![NN] = JSON.stringify({ storage: "10.10.10.1", app: "172.16.0.1" });
    const dry = await core.replaceNode({ name: "node-1", body: withApp, dryRun: "All" });
    t.equal(dry.metadata?.labels?.["planes.ovn-admission.io/app"], "true", "dryRun shows the label");
    t.equal(await encapIps(node1), '"192.168.1.1,10.10.10.1"', "dryRun wrote nothing to OVS");
    await core.replaceNode({ name: "node-1", body: withApp });
    await encapBecomes(t, node1, '"192.168.1.1,10.10.10.1,172.16.0.1"', "the annotation change reached OVS");

    // A Subnet naming an unknown plane is denied, listing the planes that exist (once the view has the nodes).
    const unknownPlane = await waitFor("the view to know the planes", async () => {
      try {
        await kube.createSubnet(
          "fast-net",
          { cidrBlock: "10.99.0.0/16", nodeNetwork: "fast" },
          { dryRun: true },
        );
        return undefined;
      } catch (err) {
        const message = apiMessage(err);
        return message.includes("app, storage") ? message : undefined;
      }
    });
    t.match(
      unknownPlane,
      /spec\.nodeNetwork: no node declares plane "fast" in ovn\.kubernetes\.io\/node_networks; planes that exist: app, storage/,
    );

    await core.createNamespace({ body: { metadata: { name: "storage-namespace" } } });
    await kube.createSubnet("storage-net", {
      protocol: "IPv4",
      cidrBlock: "10.200.0.0/16",
      gateway: "10.200.0.1",
      nodeNetwork: "storage",
      namespaces: ["storage-namespace"],
    });

    // A pod of the plane subnet comes back with the affinity (once the view has the subnet).
    const pod = (name: string): V1Pod => ({
      metadata: { name },
      spec: { containers: [{ name: "app", image: "docker.io/library/nginx:alpine" }] },
    });
    const placed = await waitFor("a pod with the plane affinity", async () => {
      const p = await core.createNamespacedPod({
        namespace: "storage-namespace",
        body: pod(`storage-pod-${Date.now()}`),
        dryRun: "All",
      });
      return p.spec?.affinity ? p : undefined;
    });
    t.same(
      placed.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms,
      [{ matchExpressions: [{ key: "planes.ovn-admission.io/storage", operator: "Exists" }] }],
    );

    // Binding (what the scheduler does): node-2 lacks the plane and is refused; node-1 has it.
    await core.createNamespacedPod({ namespace: "storage-namespace", body: pod("storage-pod") });
    const bind = (node: string) =>
      core.createNamespacedPodBinding({
        namespace: "storage-namespace",
        name: "storage-pod",
        body: { metadata: { name: "storage-pod" }, target: { apiVersion: "v1", kind: "Node", name: node } },
      });
    const refused = await waitFor("the view to have the pod", async () => {
      try {
        await bind("node-2");
        throw new Error("bound to node-2");
      } catch (err) {
        if (err instanceof Error && err.message === "bound to node-2") throw err;
        const message = apiMessage(err);
        return message.includes("cannot be bound") ? message : undefined;
      }
    });
    t.match(
      refused,
      /target\.name: pod storage-namespace\/storage-pod cannot be bound: node node-2 does not declare plane storage/,
    );
    await bind("node-1");
    const bound = await core.readNamespacedPod({ namespace: "storage-namespace", name: "storage-pod" });
    t.equal(bound.spec?.nodeName, "node-1");
    t.equal(
      bound.metadata?.annotations?.["ovn-admission.io/encap-ip"],
      "10.10.10.1",
      "the Binding's annotation reached the pod",
    );

    // Removing the plane the bound pod uses is refused, naming it.
    const without = await core.readNode({ name: "node-1" });
    without.metadata!.annotations![NN] = JSON.stringify({ app: "172.16.0.1" });
    // dryRun until the view has seen the binding (it changes nothing), then for real.
    const removal = await waitFor("the view to see the bound pod", async () => {
      try {
        await core.replaceNode({ name: "node-1", body: without, dryRun: "All" });
        return undefined;
      } catch (err) {
        return apiMessage(err);
      }
    });
    await t.rejects(core.replaceNode({ name: "node-1", body: without }), "refused for real too");
    t.equal(await encapIps(node1), '"192.168.1.1,10.10.10.1,172.16.0.1"', "OVS keeps the plane");
    t.match(
      removal,
      /plane storage cannot be removed from node node-1: running pods use it: storage-namespace\/storage-pod/,
    );
  },
);
