/**
 * One denial names every violation: through a real kube-apiserver, a pod with
 * an EIP another pod holds and an attachment of another namespace's NAD is
 * refused with both reasons, the first one first.
 */
import t from "tap";
import { CoreV1Api, CustomObjectsApi, type V1Pod } from "@kubernetes/client-node";
import { apiMessage, kubeFor } from "../harness/kube.js";
import { serviceFor } from "../harness/service.js";
import { waitFor } from "../harness/wait.js";
import { SEED_GATEWAY } from "../fixtures/index.js";

const pod = (name: string, annotations: Record<string, string>): V1Pod => ({
  metadata: { name, namespace: "shop", annotations },
  spec: { containers: [{ name: "web", image: "docker.io/library/nginx:alpine" }] },
});

t.test("a pod with two mistakes hears of both in one answer", async (t) => {
  const kube = await kubeFor(t);
  const s = await serviceFor(t, ["--kubeconfig", kube.kubeconfigFile, "--lease-namespace", "default"]);
  await kube.registerWebhooks(s.service.url, s.service.caFile as string);
  const core = kube.kubeConfig.makeApiClient(CoreV1Api);
  const custom = kube.kubeConfig.makeApiClient(CustomObjectsApi);
  for (const name of ["shop", "other"]) await core.createNamespace({ body: { metadata: { name } } });
  await core.createNamespacedConfigMap({
    namespace: "kube-system",
    body: { metadata: { name: "ovn-external-gw-config", namespace: "kube-system" }, data: SEED_GATEWAY },
  });
  await custom.createNamespacedCustomObject({
    group: "k8s.cni.cncf.io",
    version: "v1",
    namespace: "other",
    plural: "network-attachment-definitions",
    body: {
      apiVersion: "k8s.cni.cncf.io/v1",
      kind: "NetworkAttachmentDefinition",
      metadata: { name: "private-net", namespace: "other" },
      spec: {
        config: JSON.stringify({ cniVersion: "0.3.1", type: "macvlan", master: "eth1", mode: "bridge" }),
      },
    },
  });
  await core.createNamespacedPod({
    namespace: "shop",
    body: pod("holder", { "ovn.kubernetes.io/eip": "172.56.0.233" }),
  });
  await waitFor("the view to hold the EIP's pod and the NAD", async () =>
    Boolean(s.service.view.podsWithEip("172.56.0.233").length && s.service.view.nad("other", "private-net")),
  );

  const both = await core
    .createNamespacedPod({
      namespace: "shop",
      body: pod("web", {
        "ovn.kubernetes.io/eip": "172.56.0.233",
        "k8s.v1.cni.cncf.io/networks": "other/private-net",
      }),
    })
    .then(
      () => "created",
      (err: unknown) => apiMessage(err),
    );
  t.match(
    both,
    /denied the request: metadata\.annotations\["k8s\.v1\.cni\.cncf\.io\/networks"\]: attachment 1 \(other\/private-net\): pods of namespace shop may only use NetworkAttachmentDefinitions of their own namespace.*; \(2\) metadata\.annotations\["ovn\.kubernetes\.io\/eip"\]: 172\.56\.0\.233 is already the EIP of pod shop\/holder$/,
    "both reasons, the attachment's first",
  );
  const listed = await core.listNamespacedPod({ namespace: "shop" });
  t.same(
    listed.items.map((p) => p.metadata?.name),
    ["holder"],
    "nothing stored for the refused pod",
  );
});
