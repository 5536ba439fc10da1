/**
 * The service's writes to pods, from what it programmed for their stored
 * versions: `ovn.kubernetes.io/routed: "true"` once a NAT row is in place
 * (seed 003: "when the EIP or SNAT rule takes effect, routed is added
 * again"), and the address annotations of a bound pod that no admission
 * addressed (its binding came before the view had the pod, or the webhook
 * was down). A pod admitted at CREATE is not stored yet when its row is
 * written, so a write retries until the pod appears; it is dropped when the
 * pod no longer asks for what was programmed.
 */
import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { apiStatusOf } from "./api-status.js";
import { ANNOTATION } from "../domain/annotations.js";

/** What the service writes to the API (test/rbac.test.ts checks manifests/base/rbac.yaml grants exactly it). */
export const WRITES = [
  { namespace: "cluster", group: "", resource: "pods", verbs: ["get", "patch"] },
  // Events on the objects whose programming fails (cluster/events.ts).
  { namespace: "cluster", group: "", resource: "events", verbs: ["create"] },
  // The reconciler's Lease (cluster/lease.ts), in the service's own namespace.
  {
    namespace: "ovn-admission",
    group: "coordination.k8s.io",
    resource: "leases",
    verbs: ["get", "create", "update"],
  },
] as const;

/** Beside another control plane (`--alongside`) no pod is annotated: that plane marks its pods itself. */
export const ALONGSIDE_WRITES = WRITES.filter((w) => w.resource !== "pods");

/** `~` and `/` escaped for a JSON Pointer. */
const pointer = (key: string) => key.replaceAll("~", "~0").replaceAll("/", "~1");

interface Mark {
  /** The annotations to set. */
  annotations: Readonly<Record<string, string>>;
  /** True while the pod's annotations still ask for what was programmed. */
  stillWanted: (annotations: Readonly<Record<string, string>>) => boolean;
  until: number;
}

export class PodAnnotator {
  private readonly core: CoreV1Api;
  private readonly marks = new Map<string, Mark>();
  private readonly running = new Set<string>();
  private closed = false;

  constructor(
    kubeConfig: KubeConfig,
    private readonly log: Logger,
    private readonly retryMs = 250,
    private readonly giveUpMs = 60_000,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
  }

  /** Marks `pod` ("namespace/name") routed, now or as soon as it exists. */
  markRouted(pod: string, stillWanted: Mark["stillWanted"]): void {
    this.annotate(pod, { [ANNOTATION.routed]: "true" }, stillWanted);
  }

  /** Sets `annotations` on `pod`, now or as soon as it exists, while `stillWanted` holds. */
  annotate(pod: string, annotations: Mark["annotations"], stillWanted: Mark["stillWanted"]): void {
    if (this.closed) return;
    this.marks.set(pod, { annotations, stillWanted, until: Date.now() + this.giveUpMs });
    if (!this.running.has(pod)) void this.run(pod);
  }

  /** Pods waiting to be marked. */
  pending(): string[] {
    return [...this.marks.keys()].sort();
  }

  close(): void {
    this.closed = true;
    this.marks.clear();
  }

  private async run(key: string): Promise<void> {
    this.running.add(key);
    const [namespace = "", name = ""] = key.split("/");
    let attempt = 0;
    try {
      for (let mark = this.marks.get(key); mark && !this.closed; mark = this.marks.get(key)) {
        const outcome = await this.attempt(namespace, name, mark).catch((err: unknown) => {
          this.log.debug(
            { event: "pod-annotate-retry", pod: key, error: (err as Error).message },
            "retrying",
          );
          return "retry" as const;
        });
        if (outcome === "done") {
          if (this.marks.get(key) === mark) this.marks.delete(key);
          continue;
        }
        if (Date.now() > mark.until) {
          this.log.warn(
            { event: "pod-annotate-gave-up", pod: key, annotations: Object.keys(mark.annotations) },
            "pod did not appear; not annotated",
          );
          this.marks.delete(key);
          continue;
        }
        // From retryMs, doubling up to 5 s: a pod that never appears (denied later) costs few requests.
        await new Promise((r) => setTimeout(r, Math.min(5_000, this.retryMs * 2 ** Math.min(attempt++, 5))));
      }
    } finally {
      this.running.delete(key);
    }
  }

  private async attempt(namespace: string, name: string, mark: Mark): Promise<"done" | "retry"> {
    let pod;
    try {
      pod = await this.core.readNamespacedPod({ namespace, name });
    } catch (err) {
      if (apiStatusOf(err) === 404) return "retry";
      throw err;
    }
    const annotations = pod.metadata?.annotations ?? {};
    const missing = Object.entries(mark.annotations).filter(([k, v]) => annotations[k] !== v);
    if (!mark.stillWanted(annotations) || missing.length === 0) return "done";
    try {
      await this.core.patchNamespacedPod(
        {
          namespace,
          name,
          // Only the version we judged: an edit in between is judged again.
          body: [
            { op: "test", path: "/metadata/resourceVersion", value: pod.metadata?.resourceVersion },
            ...(pod.metadata?.annotations
              ? missing.map(([k, v]) => ({
                  op: "add",
                  path: `/metadata/annotations/${pointer(k)}`,
                  value: v,
                }))
              : [{ op: "add", path: "/metadata/annotations", value: Object.fromEntries(missing) }]),
          ],
        },
        setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
      );
    } catch (err) {
      if (apiStatusOf(err) === 422 || apiStatusOf(err) === 409) return "retry";
      throw err;
    }
    this.log.info(
      { event: "pod-annotated", pod: `${namespace}/${name}`, annotations: Object.fromEntries(missing) },
      "pod annotated from what was programmed for it",
    );
    return "done";
  }
}
