/**
 * Kubernetes Events for what the user should see with `kubectl describe`:
 * programming from a stored object failed (a port, NAT row, load balancer,
 * gateway or encap write that the reconciler keeps retrying). Rate-limited:
 * one Event per object and reason per window, carrying how many failures it
 * stands for, and at most a burst of Events in all, so a broken Northbound
 * cannot flood the API server.
 */
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";

/** The object an Event is about, as the view holds it. */
export interface InvolvedObject {
  kind: string;
  apiVersion: string;
  namespace: string;
  name: string;
  uid: string;
}

export interface EventLimits {
  /** One Event per object and reason within this window. */
  perObjectMs: number;
  /** Events sent in all per second, at most. */
  perSecond: number;
}

const DEFAULT_LIMITS: EventLimits = { perObjectMs: 60_000, perSecond: 5 };
const COMPONENT = "ovn-admission";

export class ProgrammingEvents {
  private readonly core: CoreV1Api;
  /** Per object and reason: when the last Event went, and the failures since. */
  private readonly recent = new Map<string, { sentAt: number; suppressed: number }>();
  private windowStart = 0;
  private sentInWindow = 0;

  constructor(
    kubeConfig: KubeConfig,
    private readonly log: Logger,
    private readonly limits: EventLimits = DEFAULT_LIMITS,
    private readonly now: () => number = Date.now,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
  }

  /** Whether an Event for this object and reason goes now; counts it either way. */
  private admit(key: string): { send: boolean; count: number } {
    const now = this.now();
    const last = this.recent.get(key);
    if (last && now - last.sentAt < this.limits.perObjectMs) {
      last.suppressed++;
      return { send: false, count: 0 };
    }
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.sentInWindow = 0;
    }
    if (this.sentInWindow >= this.limits.perSecond) return { send: false, count: 0 };
    this.sentInWindow++;
    const count = 1 + (last?.suppressed ?? 0);
    this.recent.set(key, { sentAt: now, suppressed: 0 });
    // Forget what is older than a window, so the map holds only the objects failing now.
    if (this.recent.size > 10_000)
      for (const [k, v] of this.recent) if (now - v.sentAt >= this.limits.perObjectMs) this.recent.delete(k);
    return { send: true, count };
  }

  /** A Warning Event on `object`; never throws (an Event that cannot be written is logged). */
  warn(object: InvolvedObject, reason: string, message: string): void {
    const { send, count } = this.admit(
      `${object.kind}/${object.namespace}/${object.name}/${object.uid}|${reason}`,
    );
    if (!send) return;
    const at = new Date(this.now());
    // Nodes and other cluster-scoped objects have their Events in default, as kubelet's are.
    const namespace = object.namespace || "default";
    void this.core
      .createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${object.name}.`, namespace },
          // kubectl describe node finds a Node's Events by a uid that is its name, as kubelet writes them.
          involvedObject: object.kind === "Node" ? { ...object, uid: object.name } : object,
          reason,
          message: message.slice(0, 1024),
          type: "Warning",
          count,
          firstTimestamp: at,
          lastTimestamp: at,
          source: { component: COMPONENT },
          reportingComponent: COMPONENT,
        },
      })
      .catch((err: Error) =>
        this.log.warn(
          {
            event: "kubernetes-event-failed",
            object: `${object.kind}/${namespace}/${object.name}`,
            error: err.message,
          },
          "could not write a Kubernetes Event",
        ),
      );
  }
}
