/** Prometheus metrics, on a registry of the app's own (so several apps can live in one process). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The API server's own buckets for admission webhook latency (apiserver_admission_webhook_admission_duration_seconds). */
export const API_SERVER_BUCKETS = [0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 10, 25];

export interface Metrics {
  registry: Registry;
  admissions: Counter<"webhook" | "operation" | "verdict" | "rule">;
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
  return {
    registry,
    admissions: new Counter({
      name: "ovn_admission_admissions_total",
      help: "Admissions answered, by webhook, operation, verdict (allowed, denied, warned, failed) and rule",
      labelNames: ["webhook", "operation", "verdict", "rule"],
      registers: [registry],
    }),
    admissionDuration: new Histogram({
      name: "ovn_admission_admission_duration_seconds",
      help: "Time from request to answer, per webhook",
      labelNames: ["webhook"],
      buckets: API_SERVER_BUCKETS,
      registers: [registry],
    }),
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
