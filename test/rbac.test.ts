import { readFileSync } from "node:fs";
import t from "tap";
import { parseAllDocuments } from "yaml";
import { SERVICE_SOURCES, SOURCES } from "../cluster/informers.js";
import { ALONGSIDE_WRITES, WRITES } from "../cluster/pod-annotations.js";
import { SELF_MANAGED_TLS_WRITES } from "../tls/self-managed.js";
import { kustomize, type ManifestObject } from "./harness/kustomize.js";

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
interface RbacObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: Rule[];
}

/** "scope group/resource verb" for every grant a role gives. */
function granted(objects: RbacObject[]): string[] {
  return objects
    .filter((o) => o.kind === "ClusterRole" || o.kind === "Role")
    .flatMap((o) =>
      (o.rules ?? []).flatMap((r) =>
        r.apiGroups.flatMap((g) =>
          r.resources.flatMap((res) =>
            r.verbs.map((v) => `${o.metadata.namespace ?? "cluster"} ${g}/${res} ${v}`),
          ),
        ),
      ),
    )
    .sort();
}

/** The same, for what the informers do: list and watch each source. */
type Writes = ReadonlyArray<{ namespace: string; group: string; resource: string; verbs: readonly string[] }>;

function needed(extra: Writes = [], writes: Writes = WRITES): string[] {
  // The ovn-kubernetes model also watches Services and one of EndpointSlice's versions or Endpoints.
  const all = [...SOURCES, ...SERVICE_SOURCES]
    .flatMap((s) => {
      const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)(?:\/namespaces\/([^/]+))?\/([^/]+)$/.exec(s.path);
      if (!m) throw new Error(`cannot read ${s.path}`);
      const [, group = "", namespace = "cluster", resource] = m;
      return ["list", "watch"].map((verb) => `${namespace} ${group}/${resource} ${verb}`);
    })
    .concat(
      [...writes, ...extra].flatMap((w) =>
        w.verbs.map((verb) => `${w.namespace} ${w.group}/${w.resource} ${verb}`),
      ),
    );
  return [...new Set(all)].sort();
}

t.test("RBAC grants exactly the verbs and resources the informers and the routed marker use", async (t) => {
  const objects = parseAllDocuments(readFileSync("manifests/base/rbac.yaml", "utf8")).map(
    (d) => d.toJS() as RbacObject,
  );
  t.same(granted(objects), needed());
  const bindings = objects.filter((o) => o.kind.endsWith("Binding"));
  t.equal(bindings.length, 3, "each role is bound to the service account");
  t.match(readFileSync("manifests/base/kustomization.yaml", "utf8"), /- rbac\.yaml/);
});

t.test(
  "each overlay grants exactly what the service does with it, bound to its service account",
  async (t) => {
    const rbacOf = (objects: ManifestObject[]) =>
      objects.filter((o) => o.apiVersion.startsWith("rbac.authorization.k8s.io/")) as unknown as RbacObject[];
    t.same(
      granted(rbacOf(kustomize("manifests/overlays/cert-manager"))),
      needed(),
      "cert-manager: the base's grants",
    );
    const selfManaged = rbacOf(kustomize("manifests/overlays/self-managed"));
    t.same(
      granted(selfManaged),
      needed(SELF_MANAGED_TLS_WRITES),
      "self-managed: plus its Secret and caBundle",
    );
    t.same(
      granted(rbacOf(kustomize("manifests/overlays/kube-ovn"))),
      needed([], ALONGSIDE_WRITES),
      "kube-ovn: the base's grants but patching pods (kube-ovn-controller marks them)",
    );
    for (const binding of selfManaged.filter((o) => o.kind.endsWith("Binding")) as unknown as Array<{
      subjects: Array<{ kind: string; name: string; namespace: string }>;
    }>)
      t.same(binding.subjects, [
        { kind: "ServiceAccount", name: "ovn-admission", namespace: "ovn-admission" },
      ]);
  },
);
