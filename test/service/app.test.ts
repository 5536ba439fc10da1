/**
 * The HTTP face through `app.inject`, no socket: the plugins in the order
 * buildApp registers them (admission reviews, probes, what is left) answer
 * each route, and errors before a rule runs carry their stable code.
 */
import { pino } from "pino";
import t, { type Test } from "tap";
import { ClusterState } from "../../cluster/state.js";
import { IntentHandlers } from "../../ovn/intent-runner.js";
import { buildApp } from "../../service/app.js";
import { createMetrics } from "../../service/metrics.js";
import { ROUTES } from "../../webhooks/routes.js";
import { podReview, settingsWith } from "../fixtures/index.js";

async function build(t: Test, ready = true) {
  const metrics = createMetrics();
  const app = await buildApp({
    log: pino({ level: "silent" }),
    metrics,
    view: ClusterState.of({}),
    routes: ROUTES,
    settings: settingsWith(),
    handlers: new IntentHandlers({}),
    policyLabel: "ovn-admission.io/policy",
    deadlineMs: 2000,
    failureModes: { mutate: "deny", validate: "deny" },
    bodyLimit: 1 << 20,
    keepAliveTimeoutMs: 90_000,
    readiness: () => ({ ready, waitingFor: ready ? [] : ["OVN Northbound (connecting)"] }),
  });
  t.teardown(() => app.close());
  return { app, metrics };
}

t.test("a review is answered in the version it came in, with every violation", async (t) => {
  const { app } = await build(t);
  const review = podReview((r) => {
    r.request.object.metadata.annotations = {
      "ovn.kubernetes.io/ingress_rate": "fast",
      "ovn.kubernetes.io/eip": "not-an-ip",
    };
  });
  const res = await app.inject({ method: "POST", url: "/validate", payload: review });
  t.equal(res.statusCode, 200);
  const body = res.json() as {
    apiVersion: string;
    response: { allowed: boolean; status: { code: number; message: string } };
  };
  t.equal(body.apiVersion, review.apiVersion);
  t.equal(body.response.allowed, false);
  t.equal(body.response.status.code, 400);
  t.match(
    body.response.status.message,
    /^metadata\.annotations\["ovn\.kubernetes\.io\/ingress_rate"\]: expected a whole number.*; \(2\) metadata\.annotations\["ovn\.kubernetes\.io\/eip"\]: expected an IP address/,
  );
});

t.test("errors before a rule runs: their code and status, counted", async (t) => {
  const { app, metrics } = await build(t);
  const text = await app.inject({
    method: "POST",
    url: "/mutate",
    headers: { "content-type": "text/plain" },
    payload: "x",
  });
  t.equal(text.statusCode, 415);
  t.match(text.json(), {
    code: "FST_ERR_CTP_INVALID_MEDIA_TYPE",
    error: 'content-type: expected application/json, found "text/plain"',
  });
  const notReview = await app.inject({ method: "POST", url: "/validate", payload: { kind: "Pod" } });
  t.equal(notReview.statusCode, 400);
  t.match(notReview.json(), { code: "MALFORMED_ADMISSION_REVIEW" });
  const missing = await app.inject({ method: "GET", url: "/nowhere" });
  t.equal(missing.statusCode, 404);
  t.match(missing.json(), { code: "NOT_FOUND", error: /POST \/mutate or \/validate/ });
  t.match(
    await metrics.registry.getSingleMetricAsString("ovn_admission_malformed_requests_total"),
    /reason="content-type"\} 1/,
  );
});

t.test(
  "probes: health always, readiness says what it waits for, metrics in Prometheus' format",
  async (t) => {
    const { app } = await build(t, false);
    t.equal((await app.inject({ method: "GET", url: "/healthz" })).statusCode, 200);
    const ready = await app.inject({ method: "GET", url: "/readyz" });
    t.equal(ready.statusCode, 503);
    t.same(ready.json(), { status: "not ready", waitingFor: ["OVN Northbound (connecting)"] });
    const scraped = await app.inject({ method: "GET", url: "/metrics" });
    t.equal(scraped.statusCode, 200);
    t.match(scraped.headers["content-type"], /^text\/plain/);
    t.match(scraped.body, /# TYPE ovn_admission_admissions_total counter/);
  },
);
