/** Prometheus metrics, on a registry of the app's own (so several apps can live in one process). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The API server's own buckets for admission webhook latency (apiserver_admission_webhook_admission_duration_seconds). */
export const API_SERVER_BUCKETS = [0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 10, 25];

/**
 * Admissions counted in plain numbers and handed to prom-client when the
 * registry is read, or when a batch of durations fills: prom-client sorts and
 * hashes the labels and searches the buckets on every call, which on the
 * admission path cost as much as the rule did. What it is handed is the same
 * counts and observations, so /metrics reads as if each were recorded at once.
 */
export class AdmissionTally {
  private readonly counts = new Map<string, { labels: Record<AdmissionLabel, string>; n: number }>();
  private readonly held = new Map<string, { values: Float64Array; length: number }>();

  constructor(
    private readonly admissions: Counter<AdmissionLabel>,
    private readonly duration: Histogram<"webhook">,
    /** Durations held before they are handed over: what an unscraped service holds at most, per webhook. */
    private readonly batch = 1024,
  ) {}

  record(webhook: string, operation: string, verdict: string, rule: string, seconds: number): void {
    const key = `${webhook} ${operation} ${verdict} ${rule}`;
    const count = this.counts.get(key);
    if (count) count.n++;
    else this.counts.set(key, { labels: { webhook, operation, verdict, rule }, n: 1 });
    let held = this.held.get(webhook);
    if (!held) this.held.set(webhook, (held = { values: new Float64Array(this.batch), length: 0 }));
    held.values[held.length++] = seconds;
    if (held.length === this.batch) this.handOver(webhook, held);
  }

  /** Everything tallied so far, into prom-client (the metrics' collect() calls it before each read). */
  flush(): void {
    for (const count of this.counts.values()) {
      if (count.n === 0) continue;
      this.admissions.inc(count.labels, count.n);
      count.n = 0;
    }
    for (const [webhook, held] of this.held) this.handOver(webhook, held);
  }

  private handOver(webhook: string, held: { values: Float64Array; length: number }): void {
    const child = this.duration.labels({ webhook });
    for (let i = 0; i < held.length; i++) child.observe(held.values[i] as number);
    held.length = 0;
  }
}

type AdmissionLabel = "webhook" | "operation" | "verdict" | "rule";

export interface Metrics {
  registry: Registry;
  /** Where the admission path records (it hands over to `admissions` and `admissionDuration`). */
  admitted: AdmissionTally;
  admissions: Counter<AdmissionLabel>;
  admissionDuration: Histogram<"webhook">;
  malformed: Counter<"reason">;
  ovsdbTransactionDuration: Histogram<"database" | "result">;
  cacheRows: Gauge<"cache">;
  reconcilerLeader: Gauge;
  natReconciled: Counter<"change">;
  programmed: Counter<"what" | "result">;
  certificateExpiry: Gauge<"certificate">;
}

export function createMetrics(
  cacheSizes: () => Record<string, number> = () => ({}),
  /** Seconds until each certificate expires: "serving", and "ca" where the service knows its CA. */
  certificateExpiry: () => Record<string, number> = () => ({}),
): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const admissions: Counter<AdmissionLabel> = new Counter({
    name: "ovn_admission_admissions_total",
    help: "Admissions answered, by webhook, operation, verdict (allowed, denied, warned, failed) and rule",
    labelNames: ["webhook", "operation", "verdict", "rule"],
    registers: [registry],
    collect: (): void => admitted.flush(),
  });
  const admissionDuration: Histogram<"webhook"> = new Histogram({
    name: "ovn_admission_admission_duration_seconds",
    help: "Time from request to answer, per webhook",
    labelNames: ["webhook"],
    buckets: API_SERVER_BUCKETS,
    registers: [registry],
    collect: (): void => admitted.flush(),
  });
  // Read only when the registry is, after this line has run.
  const admitted: AdmissionTally = new AdmissionTally(admissions, admissionDuration);
  return {
    registry,
    admitted,
    admissions,
    admissionDuration,
    malformed: new Counter({
      name: "ovn_admission_malformed_requests_total",
      help: "Requests refused before any rule ran (not JSON, not an AdmissionReview, too large, wrong content type)",
      labelNames: ["reason"],
      registers: [registry],
    }),
    ovsdbTransactionDuration: new Histogram({
      name: "ovn_admission_ovsdb_transaction_duration_seconds",
      help: "OVSDB transaction latency, by database and result",
      labelNames: ["database", "result"],
      buckets: API_SERVER_BUCKETS,
      registers: [registry],
    }),
    reconcilerLeader: new Gauge({
      name: "ovn_admission_reconciler_leader",
      help: "1 while this replica holds the reconciler's Lease (or runs without a cluster), else 0",
      registers: [registry],
    }),
    natReconciled: new Counter({
      name: "ovn_admission_nat_reconciled_total",
      help: "NAT rows the reconciler changed: written (missing after a crash), released (pod gone), claim-released (no stored pod asked for it within the grace), conflict (address held by another)",
      labelNames: ["change"],
      registers: [registry],
    }),
    programmed: new Counter({
      name: "ovn_admission_programmed_total",
      help: "Writes made from stored objects (what: encap, interface-encap, nat, gateway), by result (ok, failed: retried by the reconciler)",
      labelNames: ["what", "result"],
      registers: [registry],
    }),
    certificateExpiry: new Gauge({
      name: "ovn_admission_certificate_expiry_seconds",
      help: "Seconds until the certificate expires: the serving certificate, and its CA where known (self-managed, development, or the ca.crt cert-manager puts beside tls.crt); alert well before 0",
      labelNames: ["certificate"],
      registers: [registry],
      collect() {
        for (const [certificate, seconds] of Object.entries(certificateExpiry()))
          if (Number.isFinite(seconds)) this.set({ certificate }, Math.round(seconds));
      },
    }),
    cacheRows: new Gauge({
      name: "ovn_admission_cache_rows",
      help: "Objects or rows held by each cache",
      labelNames: ["cache"],
      registers: [registry],
      collect() {
        for (const [cache, size] of Object.entries(cacheSizes())) this.set({ cache }, size);
      },
    }),
  };
}
