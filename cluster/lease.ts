/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's
 * leaderelection does it: the holder renews the lease; a candidate takes it
 * over only when the record has not changed for a whole lease duration by its
 * own clock (never comparing clocks across machines). Only the leader
 * reconciles; every replica still admits.
 */
import {
  CoordinationV1Api,
  CoreV1Api,
  V1MicroTime,
  type KubeConfig,
  type V1Lease,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import { apiStatusOf } from "./api-status.js";

/** The Lease whose holder reconciles. */
export const LEASE_NAME = "ovn-admission-reconciler";

export interface LeaseSettings {
  namespace: string;
  name: string;
  /** Who we are in `holderIdentity`: unique per replica. */
  identity: string;
  leaseDurationMs: number;
  /** How often the holder renews and a candidate retries; well below the duration. */
  retryMs: number;
  /** Makes the namespace when it is missing (a service run outside a cluster, e.g. `npm start`). */
  createNamespace?: boolean;
}

/** The Lease's namespace is not there: no replica reconciles until someone makes it. */
export class LeaseNamespaceMissing extends Error {
  override name = "LeaseNamespaceMissing";
}

/** What identifies one renewal of the lease: its holder and renew time. */
function recordOf(lease: V1Lease): string {
  const renewed = lease.spec?.renewTime;
  return `${lease.spec?.holderIdentity ?? ""}@${renewed instanceof Date ? renewed.toISOString() : String(renewed ?? "")}`;
}

export class LeaseElector {
  private readonly coordination: CoordinationV1Api;
  private readonly core: CoreV1Api;
  private leading = false;
  /** Since when every attempt has failed (undefined while they succeed). */
  private failingSince: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The last record seen (holder and renew time) and when, by our clock. */
  private observed: { record: string; at: number } | undefined;
  private stopped = false;
  private lastError: string | undefined;
  private inflight: Promise<unknown> = Promise.resolve();

  constructor(
    kubeConfig: KubeConfig,
    private readonly settings: LeaseSettings,
    private readonly log: Logger,
    private readonly onChange: (leading: boolean) => void = () => undefined,
  ) {
    this.coordination = kubeConfig.makeApiClient(CoordinationV1Api);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
  }

  /** What has kept every attempt failing for longer than a lease duration: no replica reconciles meanwhile. */
  problem(now = Date.now()): string | undefined {
    if (this.failingSince === undefined || now - this.failingSince < this.settings.leaseDurationMs)
      return undefined;
    return this.lastError;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    const tick = async (): Promise<void> => {
      if (this.stopped) return;
      this.inflight = this.attempt().then(
        () => {
          this.lastError = undefined;
          this.failingSince = undefined;
        },
        (err: unknown) => {
          const error = (err as Error).message;
          this.failingSince ??= Date.now();
          // Once per distinct problem, not every retry.
          if (error !== this.lastError) {
            // A missing namespace never heals by itself: said at error level, with what to run.
            const level = err instanceof LeaseNamespaceMissing ? "error" : "warn";
            this.log[level]({ event: "lease-error", error }, "cannot take or renew the reconciler's Lease");
          }
          this.lastError = error;
          // A holder that cannot renew must assume it lost the lease before anyone else can take it.
          if (
            this.leading &&
            this.observed &&
            Date.now() - this.observed.at > this.settings.leaseDurationMs / 2
          )
            this.setLeading(false);
        },
      );
      await this.inflight;
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.settings.retryMs);
    };
    void tick();
  }

  /** Stops trying; a leader gives the lease up so that another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    // An attempt in flight could renew after this; let it land first.
    await this.inflight;
    this.setLeading(false);
    // Released whenever we hold it, also when an attempt that landed during stop() took it.
    try {
      const lease = await this.read();
      if (lease?.spec?.holderIdentity !== this.settings.identity) return;
      lease.spec = { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1 };
      await this.coordination.replaceNamespacedLease({
        namespace: this.settings.namespace,
        name: this.settings.name,
        body: lease,
      });
    } catch (err) {
      this.log.debug({ event: "lease-release-failed", error: (err as Error).message }, "lease not released");
    }
  }

  private async read(): Promise<V1Lease | undefined> {
    try {
      return await this.coordination.readNamespacedLease({
        namespace: this.settings.namespace,
        name: this.settings.name,
      });
    } catch (err) {
      if (apiStatusOf(err) === 404) return undefined;
      throw err;
    }
  }

  private spec(transitions: number, acquired?: V1MicroTime) {
    const now = new V1MicroTime();
    return {
      holderIdentity: this.settings.identity,
      leaseDurationSeconds: Math.max(1, Math.ceil(this.settings.leaseDurationMs / 1000)),
      acquireTime: acquired ?? now,
      renewTime: now,
      leaseTransitions: transitions,
    };
  }

  private async attempt(): Promise<void> {
    const { namespace, name, identity } = this.settings;
    const lease = await this.read();
    if (!lease) {
      try {
        await this.coordination.createNamespacedLease({
          namespace,
          body: { metadata: { name, namespace }, spec: this.spec(0) },
        });
        this.observed = { record: identity, at: Date.now() };
        this.setLeading(true);
      } catch (err) {
        if (apiStatusOf(err) === 404 && this.settings.createNamespace) {
          await this.core
            .createNamespace({ body: { metadata: { name: namespace } } })
            .catch((made: unknown) => {
              if (apiStatusOf(made) !== 409) throw made;
            });
          this.log.info(
            { event: "lease-namespace-created", namespace },
            `namespace ${namespace} made for the reconciler's Lease (--lease-namespace)`,
          );
          return;
        }
        if (apiStatusOf(err) === 404)
          throw new LeaseNamespaceMissing(
            `namespace ${namespace} does not exist (--lease-namespace): no replica reconciles until it does; kubectl create namespace ${namespace}, or apply manifests/overlays/*, which make it`,
          );
        if (apiStatusOf(err) !== 409) throw err; // another replica created it first
      }
      return;
    }
    const holder = lease.spec?.holderIdentity ?? "";
    const record = recordOf(lease);
    const now = Date.now();
    if (this.observed?.record !== record) this.observed = { record, at: now };
    const expired = holder === "" || now - this.observed.at >= this.settings.leaseDurationMs;
    if (holder !== identity && !expired) {
      this.setLeading(false);
      return;
    }
    const transitions = (lease.spec?.leaseTransitions ?? 0) + (holder === identity ? 0 : 1);
    lease.spec = this.spec(transitions, holder === identity ? lease.spec?.acquireTime : undefined);
    try {
      // resourceVersion makes this a compare-and-swap: of two candidates, one wins.
      const renewed = await this.coordination.replaceNamespacedLease({ namespace, name, body: lease });
      this.observed = {
        record: recordOf(renewed),
        at: Date.now(),
      };
      this.setLeading(true);
    } catch (err) {
      if (apiStatusOf(err) !== 409) throw err;
      this.setLeading(false);
    }
  }

  private setLeading(leading: boolean): void {
    if (leading && this.stopped) return; // a renewal that landed after stop(): released below, never led
    if (leading === this.leading) return;
    this.leading = leading;
    this.log.info(
      {
        event: leading ? "lease-acquired" : "lease-lost",
        lease: `${this.settings.namespace}/${this.settings.name}`,
      },
      leading ? "leading: this replica reconciles" : "not leading: another replica reconciles",
    );
    this.onChange(leading);
  }
}
