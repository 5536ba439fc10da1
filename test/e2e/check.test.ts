/**
 * `ovn-admission check --kubeconfig` against a real kube-apiserver: the view
 * is the live cluster (listed, never written), and an object that exists is
 * judged as the UPDATE `kubectl apply` would send.
 */
import { CoreV1Api } from "@kubernetes/client-node";
import t from "tap";
import { runCheck } from "../../cli/check.js";
import { kubeFor, manifestsRbacKubeconfig } from "../harness/kube.js";

t.test("judged against the live cluster: its planes, and an existing pod's allocated address", async (t) => {
  const kube = await kubeFor(t);
  const core = kube.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNode({
    body: {
      metadata: {
        name: "node-1",
        annotations: { "ovn.kubernetes.io/node_networks": '{"storage": "10.10.10.10"}' },
      },
    },
  });
  await core.createNamespace({ body: { metadata: { name: "shop" } } });
  const allocated = {
    "ovn.kubernetes.io/allocated": "true",
    "ovn.kubernetes.io/logical_switch": "ovn-default",
    "ovn.kubernetes.io/ip_address": "10.16.0.7",
    "ovn.kubernetes.io/mac_address": "0a:58:0a:10:00:07",
  };
  await core.createNamespacedPod({
    namespace: "shop",
    body: {
      metadata: { name: "db", annotations: allocated },
      spec: { nodeName: "node-1", containers: [{ name: "c", image: "i" }] },
    },
  });
  const podsBefore = (await core.listPodForAllNamespaces()).items.map((p) => p.metadata?.resourceVersion);
  const manifests = `
apiVersion: kubeovn.io/v1
kind: Subnet
metadata: { name: storage-net }
spec: { cidrBlock: 10.200.0.0/16, gateway: 10.200.0.1, nodeNetwork: storage }
---
apiVersion: kubeovn.io/v1
kind: Subnet
metadata: { name: fast-net }
spec: { cidrBlock: 10.201.0.0/16, gateway: 10.201.0.1, nodeNetwork: fast }
---
apiVersion: v1
kind: Pod
metadata:
  name: db
  namespace: shop
  annotations:
    ovn.kubernetes.io/allocated: "true"
    ovn.kubernetes.io/logical_switch: ovn-default
    ovn.kubernetes.io/ip_address: 10.16.0.8
    ovn.kubernetes.io/mac_address: 0a:58:0a:10:00:07
spec: { nodeName: node-1, containers: [{ name: c, image: i }] }
`;
  let out = "";
  const code = await runCheck(
    ["-f", "-", "--kubeconfig", kube.kubeconfigFile],
    {},
    (text) => (out += text),
    (text) => (out += text),
    () => manifests,
  );
  t.equal(code, 1, out);
  const denied = out.split("\n").filter((l) => l.includes("denied:"));
  t.equal(denied.length, 2, out);
  t.match(denied[0], '<stdin>:7 subnet/fast-net: denied: spec.nodeNetwork: no node declares plane "fast"');
  t.match(
    denied[1],
    '<stdin>:12 pod/shop/db: denied: metadata.annotations["ovn.kubernetes.io/ip_address"]: the pod\'s address is allocated and never changes (was "10.16.0.7", found "10.16.0.8")',
  );
  t.notMatch(out, "check: no --kubeconfig", "the live cluster is the view");
  t.same(
    (await core.listPodForAllNamespaces()).items.map((p) => p.metadata?.resourceVersion),
    podsBefore,
    "nothing in the cluster changed",
  );
});

t.test("an object check may not read is an error, not judged as new", async (t) => {
  const kube = await kubeFor(t);
  await kube.createSubnet("storage-net", { cidrBlock: "10.200.0.0/16", gateway: "10.200.0.1" });
  // The service's own roles: list and watch on subnets, no get.
  const kubeconfig = await manifestsRbacKubeconfig(kube);
  let out = "";
  let errors = "";
  const code = await runCheck(
    ["-f", "-", "--kubeconfig", kubeconfig],
    {},
    (text) => (out += text),
    (text) => (errors += text),
    () =>
      "apiVersion: kubeovn.io/v1\nkind: Subnet\nmetadata: { name: storage-net }\nspec: { cidrBlock: 10.200.0.0/16, gateway: 10.200.0.1 }\n",
  );
  t.equal(code, 2, out + errors);
  t.match(
    errors,
    /cannot read Subnet storage-net from the cluster \(HTTP 403\): check judges an object that exists as the UPDATE kubectl apply would send, so --kubeconfig needs get on what it checks/,
  );
  t.equal(out, "", "no verdict is printed");
});
