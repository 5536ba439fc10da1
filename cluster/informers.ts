/**
 * The resources the view watches, and how the service finds its cluster:
 * in-cluster service account, else --kubeconfig / KUBECONFIG, else none.
 */
import { existsSync } from "node:fs";
import { ApisApi, KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { Reflector, type ResourceSource } from "./reflector.js";
import { ClusterState } from "./state.js";
import {
  ENDPOINT_SLICE_VERSIONS,
  isServiceKind,
  KIND_RESOURCES,
  KINDS,
  type Kind,
  type KindResource,
} from "../domain/kinds.js";

/** The collection path of a kind: the one namespace of its only object, where it has one. */
function sourceOf(kind: Kind, version?: string): ResourceSource {
  const r: KindResource = KIND_RESOURCES[kind];
  const base = r.group ? `/apis/${r.group}/${version ?? r.version}` : `/api/${r.version}`;
  if (!r.only) return { kind, path: `${base}/${r.resource}` };
  const [namespace, name] = r.only.split("/") as [string, string];
  return {
    kind,
    path: `${base}/namespaces/${namespace}/${r.resource}`,
    fieldSelector: `metadata.name=${name}`,
  };
}

/** Every collection the view lists and watches. manifests/base/rbac.yaml grants exactly these (test/rbac.test.ts). */
export const SOURCES: readonly ResourceSource[] = KINDS.filter((k) => !isServiceKind(k)).map((k) =>
  sourceOf(k),
);

/** Every collection the ovn-kubernetes model may watch besides (one of EndpointSlice's versions, or Endpoints). */
export const SERVICE_SOURCES: readonly ResourceSource[] = [
  sourceOf("Service"),
  ...ENDPOINT_SLICE_VERSIONS.map((v) => sourceOf("EndpointSlice", v)),
  sourceOf("Endpoints"),
];

/**
 * What the ovn-kubernetes model watches to program Services: Services and
 * the newest EndpointSlice version the API server serves (v1 from
 * Kubernetes 1.21, v1beta1 on 1.17 to 1.20), or Endpoints where it serves none.
 */
export async function serviceSources(kubeConfig: KubeConfig): Promise<ResourceSource[]> {
  const { groups } = await kubeConfig.makeApiClient(ApisApi).getAPIVersions();
  const served = new Set(
    groups.find((g) => g.name === KIND_RESOURCES.EndpointSlice.group)?.versions.map((v) => v.version) ?? [],
  );
  const version = ENDPOINT_SLICE_VERSIONS.find((v) => served.has(v));
  return [sourceOf("Service"), version ? sourceOf("EndpointSlice", version) : sourceOf("Endpoints")];
}

const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/** The cluster to watch, the usual way; undefined when there is none. */
export function findCluster(
  kubeconfig: string | undefined,
  inCluster: boolean,
): { kubeConfig: KubeConfig; from: string } | undefined {
  const kubeConfig = new KubeConfig();
  if (kubeconfig) {
    kubeConfig.loadFromFile(kubeconfig);
    return { kubeConfig, from: kubeconfig };
  }
  if (inCluster && existsSync(SERVICE_ACCOUNT_TOKEN)) {
    kubeConfig.loadFromCluster();
    return { kubeConfig, from: "in-cluster service account" };
  }
  return undefined;
}

export interface Informers {
  state: ClusterState;
  reflectors: Reflector[];
  /** Resolves when every resource has been listed once. */
  synced: Promise<void>;
  stop(): void;
}

/** Starts a reflector per source into one ClusterState; listing failures are retried, never fatal. */
export function startInformers(
  kubeConfig: KubeConfig,
  log: Logger,
  sources: readonly ResourceSource[] = SOURCES,
): Informers {
  const state = new ClusterState(sources.map((s) => s.kind));
  const reflectors = sources.map((source) => new Reflector(kubeConfig, source, state, log));
  let stopped = false;
  const synced = Promise.all(
    reflectors.map(async (reflector) => {
      for (let attempt = 1; !stopped; attempt++) {
        try {
          await reflector.start();
          return;
        } catch (err) {
          const retryMs = Math.min(10_000, 250 * 2 ** attempt);
          log.warn(
            {
              event: "list-failed",
              kind: reflector.source.kind,
              error: (err as Error).message,
              attempt,
              retryMs,
            },
            "cannot list; retrying",
          );
          await new Promise((r) => setTimeout(r, retryMs));
        }
      }
    }),
  ).then(() => log.info({ event: "cluster-view-synced", sizes: state.sizes() }, "cluster view synced"));
  return {
    state,
    reflectors,
    synced,
    stop: () => {
      stopped = true;
      for (const r of reflectors) r.stop();
    },
  };
}
