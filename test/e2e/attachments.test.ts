/** Multi-network pods end to end: NADs and pods through a real kube-apiserver. */
import t from "tap";
import { CoreV1Api, CustomObjectsApi, type V1Pod } from "@kubernetes/client-node";
import { apiMessage, kubeFor } from "../harness/kube.js";
import { serviceFor } from "../harness/service.js";
import { waitFor } from "../harness/wait.js";

const pod = (name: string, networks: string): V1Pod => ({
  metadata: { name, annotations: { "k8s.v1.cni.cncf.io/networks": networks } },
  spec: { containers: [{ name: "app", image: "docker.io/library/nginx:alpine" }] },
});

t.test("NADs confine pods to their namespace and bring their node selectors", async (t) => {
  const kube = await kubeFor(t);
  const s = await serviceFor(t, ["--kubeconfig", kube.kubeconfigFile]);
  await kube.registerWebhooks(s.service.url, s.service.caFile as string);
  const core = kube.kubeConfig.makeApiClient(CoreV1Api);
  const custom = kube.kubeConfig.makeApiClient(CustomObjectsApi);
  for (const name of ["shop", "other"]) await core.createNamespace({ body: { metadata: { name } } });
  const createNad = (
    namespace: string,
    name: string,
    config: unknown,
    annotations: Record<string, string> = {},
  ) =>
    custom.createNamespacedCustomObject({
      group: "k8s.cni.cncf.io",
      version: "v1",
      namespace,
      plural: "network-attachment-definitions",
      body: {
        apiVersion: "k8s.cni.cncf.io/v1",
        kind: "NetworkAttachmentDefinition",
        metadata: { name, namespace, annotations },
        spec: { config: JSON.stringify(config) },
      },
    });

  // Our webhook answers a bad NAD once the configuration is noticed.
  const refused = await waitFor("our NAD webhook to answer", async () => {
    try {
      await createNad("shop", "sriov-net", { cniVersion: "0.3.1", type: "sriov" });
      return undefined;
    } catch (err) {
      return apiMessage(err);
    }
  });
  t.match(refused, /spec\.config\.type: plugin "sriov" is not allowed here; allowed: kube-ovn, ipvlan/);

  await createNad("other", "private-net", {
    cniVersion: "0.3.1",
    type: "macvlan",
    master: "eth1",
    mode: "bridge",
  });
  await createNad(
    "shop",
    "storage-net",
    { cniVersion: "0.3.1", type: "macvlan", master: "eth2", mode: "bridge" },
    { "k8s.v1.cni.cncf.io/nodeSelector": "network.example.com/storage=true" },
  );
  await createNad(
    "shop",
    "fast-net",
    { cniVersion: "0.3.1", type: "macvlan", master: "eth3", mode: "bridge" },
    { "k8s.v1.cni.cncf.io/nodeSelector": "network.example.com/storage=false" },
  );

  // A NAD of another namespace is denied at apply time (once the view has it).
  const isolation = await waitFor("the view to have the NADs", async () => {
    try {
      await core.createNamespacedPod({
        namespace: "shop",
        body: pod("nosy", "other/private-net"),
        dryRun: "All",
      });
      return undefined;
    } catch (err) {
      const message = apiMessage(err);
      return message.includes("may only use") ? message : undefined;
    }
  });
  t.match(
    isolation,
    /attachment 1 \(other\/private-net\): pods of namespace shop may only use NetworkAttachmentDefinitions of their own namespace/,
  );

  // A NAD's node selector comes back in spec.nodeSelector.
  const placed = await core.createNamespacedPod({
    namespace: "shop",
    body: pod("storage-pod", "storage-net@net1"),
  });
  t.same(placed.spec?.nodeSelector, { "network.example.com/storage": "true" });

  // Two NADs asking for different values of one key: denied, naming both.
  const clash = await core
    .createNamespacedPod({ namespace: "shop", body: pod("confused", "storage-net,fast-net") })
    .then(
      () => "",
      (err: unknown) => apiMessage(err),
    );
  t.match(
    clash,
    /spec\.nodeSelector: network\.example\.com\/storage: NetworkAttachmentDefinition shop\/storage-net asks for "true" and NetworkAttachmentDefinition shop\/fast-net for "false"; no node can satisfy both/,
  );
});
