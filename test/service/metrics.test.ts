import t from "tap";
import { Counter, Histogram, Registry } from "prom-client";
import { AdmissionTally, createMetrics } from "../../service/metrics.js";

t.test("admissions tallied off prom-client are all there when /metrics is read", async (t) => {
  const metrics = createMetrics();
  for (let i = 0; i < 5; i++) metrics.admitted.record("validate", "CREATE", "allowed", "pods", 0.002);
  metrics.admitted.record("validate", "CREATE", "denied", "pods", 0.03);
  metrics.admitted.record("mutate", "UPDATE", "allowed", "nodes", 0.2);
  const text = await metrics.registry.metrics();
  t.match(
    text,
    /ovn_admission_admissions_total\{webhook="validate",operation="CREATE",verdict="allowed",rule="pods"\} 5/,
  );
  t.match(
    text,
    /ovn_admission_admissions_total\{webhook="validate",operation="CREATE",verdict="denied",rule="pods"\} 1/,
  );
  t.match(
    text,
    /ovn_admission_admissions_total\{webhook="mutate",operation="UPDATE",verdict="allowed",rule="nodes"\} 1/,
  );
  t.match(text, /ovn_admission_admission_duration_seconds_bucket\{le="0.005",webhook="validate"\} 5/);
  t.match(text, /ovn_admission_admission_duration_seconds_bucket\{le="0.1",webhook="validate"\} 6/);
  t.match(text, /ovn_admission_admission_duration_seconds_count\{webhook="mutate"\} 1/);
  // Read twice: nothing is counted twice.
  metrics.admitted.record("validate", "CREATE", "allowed", "pods", 0.002);
  const again = await metrics.registry.metrics();
  t.match(again, /verdict="allowed",rule="pods"\} 6/);
  t.match(again, /ovn_admission_admission_duration_seconds_count\{webhook="validate"\} 7/);
});

t.test("durations are handed over when a batch fills, scraped or not", async (t) => {
  const registry = new Registry();
  // Metrics without collect(): what get() shows is only what the tally handed over by itself.
  const admissions = new Counter({
    name: "a",
    help: "a",
    labelNames: ["webhook", "operation", "verdict", "rule"],
    registers: [registry],
  });
  const duration = new Histogram({
    name: "d",
    help: "d",
    labelNames: ["webhook"],
    buckets: [1],
    registers: [registry],
  });
  const tally = new AdmissionTally(admissions, duration, 4);
  const count = async () => (await duration.get()).values.find((v) => v.metricName === "d_count")?.value ?? 0;
  for (let i = 0; i < 3; i++) tally.record("validate", "CREATE", "allowed", "pods", 0.5);
  t.equal(await count(), 0, "held until the batch fills");
  tally.record("validate", "CREATE", "allowed", "pods", 0.5);
  t.equal(await count(), 4, "a full batch is handed over at once");
  tally.record("validate", "CREATE", "allowed", "pods", 0.5);
  tally.flush();
  t.equal(await count(), 5);
  t.equal((await admissions.get()).values[0]?.value, 5);
});
