/**
 * Every overlay, rendered as `kubectl apply -k` would, applied to a real
 * kube-apiserver: every object is accepted, and the service account may do
 * exactly what the service does (asked of the API server's own RBAC
 * authorizer with SubjectAccessReviews), no more.
 */
import t from "tap";
import {
  AuthorizationV1Api,
  type KubernetesObject,
  type V1ResourceAttributes,
} from "@kubernetes/client-node";
import { SERVICE_SOURCES, SOURCES } from "../../cluster/informers.js";
import { ALONGSIDE_WRITES, WRITES } from "../../cluster/pod-annotations.js";
import { SELF_MANAGED_TLS_WRITES } from "../../tls/self-managed.js";
import { kubeFor, apiMessage } from "../harness/kube.js";
import { kustomize, type ManifestObject } from "../harness/kustomize.js";
import { serviceFor } from "../harness/service.js";

const SERVICE_ACCOUNT = "system:serviceaccount:ovn-admission:ovn-admission";

/** Stand-ins for cert-manager's CRDs (this API server has no cert-manager): they accept any spec. */
const certManagerKinds = ["Issuer", "Certificate"].map((kind) => ({
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `${kind.toLowerCase()}s.cert-manager.io` },
  spec: {
    group: "cert-manager.io",
    scope: "Namespaced",
    names: { kind, plural: `${kind.toLowerCase()}s`, singular: kind.toLowerCase() },
    versions: [
      {
        name: "v1",
        served: true,
        storage: true,
        schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
      },
    ],
  },
}));

/** Namespaces first, then the rest in file order: as kubectl apply sorts them. */
function applyOrder(objects: ManifestObject[]): ManifestObject[] {
  return [...objects.filter((o) => o.kind === "Namespace"), ...objects.filter((o) => o.kind !== "Namespace")];
}

/** Every grant the service needs, as SubjectAccessReview resource attributes. */
function needs(selfManaged: boolean, alongside = false) {
  const watched = [...SOURCES, ...SERVICE_SOURCES].flatMap((s) => {
    const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)(?:\/namespaces\/([^/]+))?\/([^/]+)$/.exec(s.path);
    const [, group = "", namespace = "", resource = ""] = m ?? [];
    return ["list", "watch"].map((verb) => ({ group, namespace, resource, verb }));
  });
  const writes = [
    ...(alongside ? ALONGSIDE_WRITES : WRITES),
    ...(selfManaged ? SELF_MANAGED_TLS_WRITES : []),
  ].flatMap((w) =>
    w.verbs.map((verb) => ({
      group: w.group,
      namespace: w.namespace === "cluster" ? "" : w.namespace,
      resource: w.resource,
      verb,
      // Grants limited by name are asked for that name.
      ...(w.resource === "secrets" && verb !== "create" ? { name: "ovn-admission-self-managed-tls" } : {}),
      ...(w.resource.endsWith("webhookconfigurations") ? { name: "ovn-admission" } : {}),
    })),
  );
  return [...watched, ...writes];
}

for (const overlay of ["cert-manager", "self-managed", "kube-ovn"] as const) {
  t.test(`overlays/${overlay}: accepted by the API server; RBAC exactly as needed`, async (t) => {
    const kube = await kubeFor(t);
    if (overlay !== "self-managed") for (const crd of certManagerKinds) await kube.objects.create(crd);
    const objects = applyOrder(kustomize(`manifests/overlays/${overlay}`));
    for (const object of objects) {
      // Kubernetes 1.20 (the e2e API server) serves PodDisruptionBudget as policy/v1beta1 only; the fields are the same.
      const body =
        object.kind === "PodDisruptionBudget" ? { ...object, apiVersion: "policy/v1beta1" } : object;
      for (let attempt = 1; ; attempt++) {
        try {
          await kube.objects.create(body as KubernetesObject);
          break;
        } catch (err) {
          // A CRD's kind is served a moment after the CRD is made.
          if (
            attempt < 20 &&
            /could not find the requested resource|no matches for kind/i.test(apiMessage(err))
          ) {
            await new Promise((r) => setTimeout(r, 250));
            continue;
          }
          t.fail(`${object.kind}/${object.metadata.name}: ${apiMessage(err)}`);
          break;
        }
      }
    }
    t.pass(`${objects.length} objects applied`);

    const authz = kube.kubeConfig.makeApiClient(AuthorizationV1Api);
    const allowed = async (attributes: V1ResourceAttributes) =>
      (
        await authz.createSubjectAccessReview({
          body: {
            apiVersion: "authorization.k8s.io/v1",
            kind: "SubjectAccessReview",
            spec: {
              user: SERVICE_ACCOUNT,
              groups: [
                "system:serviceaccounts",
                "system:serviceaccounts:ovn-admission",
                "system:authenticated",
              ],
              resourceAttributes: attributes,
            },
          },
        })
      ).status?.allowed === true;
    const denied: string[] = [];
    for (const need of needs(overlay === "self-managed", overlay === "kube-ovn"))
      if (!(await allowed(need))) denied.push(JSON.stringify(need));
    t.same(denied, [], "every read and write the service makes is allowed");
    const beyond = [
      { group: "", namespace: "shop", resource: "pods", verb: "delete" },
      { group: "", namespace: "", resource: "nodes", verb: "patch" },
      { group: "", namespace: "ovn-admission", resource: "secrets", verb: "list" },
      { group: "", namespace: "ovn-admission", resource: "secrets", verb: "get", name: "someone-elses" },
      { group: "", namespace: "kube-system", resource: "configmaps", verb: "update" },
      {
        group: "admissionregistration.k8s.io",
        namespace: "",
        resource: "validatingwebhookconfigurations",
        verb: "update",
        name: "another-product",
      },
    ];
    const granted: string[] = [];
    for (const attributes of beyond) if (await allowed(attributes)) granted.push(JSON.stringify(attributes));
    t.same(granted, [], "nothing beyond it");
  });
}

t.test("every path the webhook configurations call is served", async (t) => {
  const s = await serviceFor(t);
  const paths = new Set(
    kustomize("manifests/overlays/self-managed")
      .filter((o) => o.kind.endsWith("WebhookConfiguration"))
      .flatMap((o) =>
        (o.webhooks as Array<{ clientConfig: { service: { path: string } } }>).map(
          (w) => w.clientConfig.service.path,
        ),
      ),
  );
  t.same([...paths].sort(), ["/mutate", "/validate"]);
  for (const path of paths) {
    const answer = await s.request("POST", path, { body: "{}" });
    t.equal(answer.status, 400, `${path} is served (an empty body is a 400, not a 404)`);
  }
});
