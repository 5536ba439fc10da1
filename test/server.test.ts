import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import https from "node:https";
import path from "node:path";
import tls from "node:tls";
import jsonPatch from "fast-json-patch";
import t, { type Test } from "tap";
import { OvsdbClient, op } from "ovsdb-client";
import { ClusterState } from "../cluster/state.js";
import { IntentHandlers } from "../ovn/intent-runner.js";
import { ensureDevCertificates } from "../tls/certificates.js";
import { buildPatch, editable } from "../webhooks/patch.js";
import { ROUTES, type Route } from "../webhooks/routes.js";
import { allow } from "../webhooks/verdict.js";
import { podReview, podUpdate } from "./fixtures/index.js";
import { northboundFor, scratchDir } from "./harness/index.js";
import { responseOf, serviceFor } from "./harness/service.js";

const NB = "OVN_Northbound";

/**
 * A resource of our own for exercising the server: its mutate rule annotates
 * the object and asks for a Logical_Switch named after it, which the handler
 * below creates in a real Northbound.
 */
const widgetRoutes: Route[] = [
  ...ROUTES,
  {
    webhook: "mutate",
    group: "example.com",
    resource: "widgets",
    subResource: "",
    operations: ["CREATE"],
    name: "widgets",
    rule: (request) => {
      const widget = editable(request.object ?? {});
      widget.metadata = {
        ...widget.metadata,
        annotations: { ...widget.metadata?.annotations, "example.com/seen": "yes" },
      };
      return allow({
        patch: buildPatch(request.object, widget),
        intents: [{ kind: "switch", owner: request.name, spec: { name: `ls-${request.name}` } }],
      });
    },
  },
  {
    webhook: "validate",
    group: "example.com",
    resource: "widgets",
    subResource: "",
    operations: ["CREATE"],
    name: "widgets",
    // A validating rule that (wrongly) returns a patch: the envelope must not send it.
    rule: (request) => allow({ patch: buildPatch(request.object, { ...request.object, x: 1 }) }),
  },
];

function widgetReview(name: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: `uid-${name}`,
      kind: { group: "example.com", version: "v1", kind: "Widget" },
      resource: { group: "example.com", version: "v1", resource: "widgets" },
      name,
      namespace: "shop",
      operation: "CREATE",
      object: { apiVersion: "example.com/v1", kind: "Widget", metadata: { name, namespace: "shop" } },
      ...extra,
    },
  };
}

/** A Northbound, a client of our own to it, and the intent handler that writes through that client. */
async function northboundWithHandler(t: Test) {
  const nb = await northboundFor(t);
  const client = new OvsdbClient({
    remote: nb.unixRemote,
    database: NB,
    probeIntervalMs: 0,
    requestTimeoutMs: 0,
  });
  t.teardown(() => client.close());
  await client.connect({ timeoutMs: 5000 });
  const handlers = new IntentHandlers({
    switch: async (intent, signal) => {
      await client.transact(NB, [op.insert("Logical_Switch", { name: String(intent.spec.name) })], {
        signal,
        timeoutMs: 0,
      });
    },
  });
  /** The widgets' switches (the service makes its claims switch at start-up too). */
  const switches = async (): Promise<string[]> => {
    const [r] = await client.transact(NB, [op.select("Logical_Switch", [], ["name"])]);
    return (r?.rows ?? []).map((row) => String(row.name)).filter((name) => name.startsWith("ls-"));
  };
  return { nb, handlers, switches };
}

t.test("malformed requests get a 4xx JSON error and a log line, and never a crash", async (t) => {
  const s = await serviceFor(t, ["--body-limit", "3Mi"]);
  const cases: Array<[string, { body?: string | Buffer; contentType?: string }, number, RegExp]> = [
    ["not JSON", { body: "{not json" }, 400, /JSON/],
    ["empty body", { body: "" }, 400, /empty/i],
    [
      "wrong content type",
      { body: "x", contentType: "text/plain" },
      415,
      /^content-type: expected application\/json, found "text\/plain"$/,
    ],
    [
      "wrong apiVersion",
      { body: JSON.stringify(podReview((r) => (r.apiVersion = "v1"))) },
      400,
      /^apiVersion: expected/,
    ],
    [
      "wrong kind",
      { body: JSON.stringify(podReview((r) => (r.kind = "Pod"))) },
      400,
      /^kind: expected "AdmissionReview"/,
    ],
    [
      "no request",
      { body: JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }) },
      400,
      /^request: expected an object/,
    ],
    [
      "no uid",
      { body: JSON.stringify(podReview((r) => delete (r.request as Record<string, unknown>).uid)) },
      400,
      /^request\.uid/,
    ],
    [
      "object of the wrong type",
      { body: JSON.stringify(podReview((r) => (r.request.object.kind = "Service"))) },
      400,
      /request\.object\.kind: expected "Pod"/,
    ],
    ["body over the limit", { body: Buffer.alloc(3 * 1024 * 1024 + 10, 0x20) }, 413, /too large|exceeds/i],
  ];
  for (const [what, options, status, message] of cases) {
    const answer = await s.request("POST", "/validate", options);
    t.equal(answer.status, status, `${what}: status`);
    t.match(answer.json, { error: message, statusCode: status }, `${what}: JSON error`);
  }
  const unknown = await s.request("GET", "/nope");
  t.equal(unknown.status, 404);
  t.equal((await s.request("GET", "/healthz")).status, 200, "still alive");
  t.equal(s.logs.filter((l) => l.event === "request-refused").length, cases.length);
  t.match(
    s.logs.find((l) => l.event === "request-refused" && l.status === 413),
    { code: "FST_ERR_CTP_BODY_TOO_LARGE" },
  );
});

t.test("v1 and v1beta1 are answered in their own version, with the uid echoed", async (t) => {
  const s = await serviceFor(t);
  for (const version of ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"]) {
    const answer = await s.review(
      "/validate",
      podReview((r) => (r.apiVersion = version)),
    );
    t.equal(answer.status, 200);
    t.match(answer.json, {
      apiVersion: version,
      kind: "AdmissionReview",
      response: { uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: true },
    });
  }
  const nobody = await s.review(
    "/validate",
    widgetReview("w1", { resource: { group: "example.com", version: "v1", resource: "gadgets" } }),
  );
  t.same(
    responseOf(nobody),
    { uid: "uid-w1", allowed: true },
    "a resource nobody handles is allowed untouched",
  );
});

t.test("a denial carries the code and a message naming field, value and expectation", async (t) => {
  const s = await serviceFor(t, ["--max-rate", "1000"]);
  const bad = await s.review(
    "/validate",
    podReview((r) => (r.request.object.metadata.annotations = { "ovn.kubernetes.io/ingress_rate": "fast" })),
  );
  t.match(responseOf(bad), {
    allowed: false,
    status: {
      code: 400,
      message:
        'metadata.annotations["ovn.kubernetes.io/ingress_rate"]: expected a whole number of Mbit/s (e.g. "100"), found "fast"',
    },
  });
  const over = await s.review(
    "/validate",
    podReview((r) => (r.request.object.metadata.annotations = { "ovn.kubernetes.io/egress_rate": "5000" })),
  );
  t.match(responseOf(over), {
    allowed: false,
    status: { code: 403, message: /expected at most 1000 Mbit\/s, found "5000"/ },
  });
  const line = s.logs.find((l) => l.event === "admission" && l.verdict === "denied");
  t.match(line, {
    uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
    kind: "Pod",
    operation: "CREATE",
    namespace: "shop",
    name: "web-7d4b9c8f6-x2k9p",
    rule: "pods",
  });
  t.type(line?.durationMs, "number");
  t.equal(line?.level, 30, "an admission that denied is logged at info");
  const untouched = await s.review("/validate", podReview());
  t.same(responseOf(untouched), { uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: true });
  t.match(
    s.logs.find((l) => l.event === "admission" && l.verdict === "allowed"),
    { level: 20, rule: "pods", uid: "705ab4f5-6393-11e8-b7cc-42010a800002" },
    "one let through untouched is logged at debug",
  );
  const metrics = (await s.request("GET", "/metrics")).text;
  t.match(
    metrics,
    /ovn_admission_admissions_total\{webhook="validate",operation="CREATE",verdict="denied",rule="pods"\} 2/,
  );
  t.match(
    metrics,
    /ovn_admission_admissions_total\{webhook="validate",operation="CREATE",verdict="allowed",rule="pods"\} 1/,
  );
  t.match(metrics, /ovn_admission_admission_duration_seconds_count\{webhook="validate"\} 3/);
});

t.test(
  "patches: applied to the original they give the mutated object, also without annotations",
  async (t) => {
    const { handlers } = await northboundWithHandler(t);
    const s = await serviceFor(t, [], { routes: widgetRoutes, handlers });
    const review = widgetReview("plain");
    const answer = responseOf(await s.review("/mutate", review));
    t.equal(answer.patchType, "JSONPatch");
    const patch = JSON.parse(Buffer.from(String(answer.patch), "base64").toString()) as jsonPatch.Operation[];
    t.same(patch, [{ op: "add", path: "/metadata/annotations", value: { "example.com/seen": "yes" } }]);
    const result = jsonPatch.applyPatch(structuredClone(review.request.object), patch, true).newDocument;
    t.same(result.metadata, { name: "plain", namespace: "shop", annotations: { "example.com/seen": "yes" } });

    const validated = responseOf(await s.review("/validate", widgetReview("plain2")));
    t.equal(validated.patch, undefined, "a validating webhook never sends a patch");

    // The real pod rule through /mutate: a moved EIP drops routed.
    const update = podUpdate(
      { "ovn.kubernetes.io/eip": "172.56.0.11", "ovn.kubernetes.io/routed": "true" },
      { "ovn.kubernetes.io/eip": "172.56.0.10", "ovn.kubernetes.io/routed": "true" },
    );
    const moved = responseOf(await s.review("/mutate", update));
    const podPatch = JSON.parse(
      Buffer.from(String(moved.patch), "base64").toString(),
    ) as jsonPatch.Operation[];
    const pod = jsonPatch.applyPatch(structuredClone(update.request.object), podPatch, true).newDocument;
    t.same(pod.metadata.annotations, { "ovn.kubernetes.io/eip": "172.56.0.11" });
    t.match(moved.warnings, [/routed removed/]);
  },
);

t.test("dryRun gives the same verdict and patch and writes nothing to OVSDB", async (t) => {
  const { handlers, switches } = await northboundWithHandler(t);
  const s = await serviceFor(t, [], { routes: widgetRoutes, handlers });
  const dry = responseOf(await s.review("/mutate", widgetReview("dry", { dryRun: true })));
  t.same(await switches(), [], "nothing written on dryRun");
  const real = responseOf(await s.review("/mutate", widgetReview("dry")));
  t.same(await switches(), ["ls-dry"], "written without dryRun");
  t.same({ ...dry, uid: "" }, { ...real, uid: "" }, "same verdict and patch");
});

t.test("namespace policy: warn admits a denial with a warning, off passes untouched", async (t) => {
  const label = "ovn-admission.io/policy";
  const view = ClusterState.of({
    Namespace: [
      { metadata: { name: "shop", labels: { [label]: "warn" } } },
      { metadata: { name: "legacy", labels: { [label]: "off" } } },
    ],
  });
  const s = await serviceFor(t, [], { view });
  const bad = (ns: string) =>
    podReview((r) => {
      r.request.namespace = ns;
      r.request.object.metadata.annotations = { "ovn.kubernetes.io/ingress_rate": "fast" };
    });
  const warned = responseOf(await s.review("/validate", bad("shop")));
  t.match(warned, {
    allowed: true,
    warnings: [/found "fast" \(namespace policy is warn: admitted anyway, and nothing is programmed/],
  });
  t.same(responseOf(await s.review("/validate", bad("legacy"))), {
    uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
    allowed: true,
  });
  t.match(responseOf(await s.review("/validate", bad("other"))), { allowed: false });
  const metrics = await s.request("GET", "/metrics");
  t.match(
    metrics.text,
    /ovn_admission_admissions_total\{webhook="validate",operation="CREATE",verdict="warned",rule="pods"\} 1/,
  );
});

t.test("deadline exceeded: the answer comes in time and follows the failure mode", async (t) => {
  const { nb, handlers, switches } = await northboundWithHandler(t);
  t.teardown(() => nb.thaw());
  const deny = await serviceFor(t, ["--admission-deadline", "0.3", "--nb-remote", nb.unixRemote], {
    routes: widgetRoutes,
    handlers,
  });
  const allow = await serviceFor(
    t,
    ["--admission-deadline", "0.3", "--nb-remote", nb.unixRemote, "--mutate-failure-mode", "allow"],
    { routes: widgetRoutes, handlers },
  );
  nb.freeze(); // the Northbound stops answering
  let started = Date.now();
  const denied = responseOf(await deny.review("/mutate", widgetReview("slow")));
  const tookDeny = Date.now() - started;
  t.match(denied, {
    allowed: false,
    status: {
      code: 503,
      message:
        /could not program OVN for this Widget \(failure mode deny\): no answer within the 300 ms admission deadline/,
    },
  });
  t.ok(tookDeny >= 250 && tookDeny < 1500, `denied after ${tookDeny} ms`);
  started = Date.now();
  const allowed = responseOf(await allow.review("/mutate", widgetReview("slow2")));
  t.ok(Date.now() - started < 1500);
  t.match(allowed, {
    allowed: true,
    patchType: "JSONPatch",
    warnings: [/OVN is not programmed for it yet: no answer within the 300 ms/],
  });
  t.match(
    deny.logs.find((l) => l.event === "admission"),
    { verdict: "failed", failure: /deadline/ },
  );
  nb.thaw();
  // The canceled transactions never commit.
  await new Promise((r) => setTimeout(r, 200));
  t.same(await switches(), []);
});

t.test("a rotated certificate is used for new connections without a restart", async (t) => {
  const dir = scratchDir("oa-rot-");
  const first = await ensureDevCertificates(path.join(dir, "a"));
  const second = await ensureDevCertificates(path.join(dir, "b"));
  const live = { certFile: path.join(dir, "tls.crt"), keyFile: path.join(dir, "tls.key") };
  copyFileSync(first.certFile, live.certFile);
  copyFileSync(first.keyFile, live.keyFile);
  const s = await serviceFor(t, ["--tls-cert-file", live.certFile, "--tls-key-file", live.keyFile], {});
  const ask = (ca: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = tls.connect(
        { host: "127.0.0.1", port: s.service.port, ca: readFileSync(ca), servername: "localhost" },
        () => {
          resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? "");
          socket.end();
        },
      );
      socket.on("error", reject);
    });
  const before = await ask(first.caFile);
  // cert-manager rewrites the key and certificate in place.
  copyFileSync(second.keyFile, live.keyFile);
  copyFileSync(second.certFile, live.certFile);
  let after = before;
  for (let i = 0; i < 50 && after === before; i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await ask(second.caFile).catch(() => before);
  }
  t.not(after, before, "a new connection gets the new certificate");
  t.ok(s.logs.some((l) => l.event === "certificate-reloaded"));
  await t.rejects(ask(first.caFile), "the old CA no longer verifies new connections");
});

t.test(
  "certificate expiry metrics with cert-manager's Secret: the serving certificate and the ca.crt beside it",
  async (t) => {
    const dir = scratchDir("oa-cm-");
    const made = await ensureDevCertificates(path.join(dir, "made"));
    // A cert-manager Secret mount: tls.crt, tls.key and ca.crt side by side.
    const mount = path.join(dir, "mount");
    mkdirSync(mount);
    copyFileSync(made.certFile, path.join(mount, "tls.crt"));
    copyFileSync(made.keyFile, path.join(mount, "tls.key"));
    copyFileSync(made.caFile, path.join(mount, "ca.crt"));
    const s = await serviceFor(t, [
      "--tls-cert-file",
      path.join(mount, "tls.crt"),
      "--tls-key-file",
      path.join(mount, "tls.key"),
    ]);
    const metrics = (await s.request("GET", "/metrics")).text;
    const seconds = (which: string) =>
      Number(
        new RegExp(`ovn_admission_certificate_expiry_seconds\\{certificate="${which}"\\} (\\S+)`).exec(
          metrics,
        )?.[1],
      );
    const days = (n: number) => n * 86_400;
    t.ok(seconds("serving") > days(29) && seconds("serving") <= days(30), `serving: ${seconds("serving")} s`);
    t.ok(seconds("ca") > days(364) && seconds("ca") <= days(365), `ca: ${seconds("ca")} s`);
  },
);

t.test("TLS 1.2 at least, and keep-alive of at least 90 s", async (t) => {
  const s = await serviceFor(t);
  await t.rejects(
    new Promise((resolve, reject) => {
      const socket = tls.connect(
        { host: "127.0.0.1", port: s.service.port, ca: s.ca, maxVersion: "TLSv1.1", minVersion: "TLSv1" },
        () => resolve(socket),
      );
      socket.on("error", reject);
    }),
    "TLS 1.1 is refused",
  );
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const a = await s.request("GET", "/healthz", { agent });
  t.match(a.headers["keep-alive"], /timeout=(\d+)/);
  t.ok(Number(/timeout=(\d+)/.exec(String(a.headers["keep-alive"]))?.[1]) >= 90);
});

t.test("readyz follows OVSDB; metrics use the API server's buckets", async (t) => {
  const nb = await northboundFor(t);
  const s = await serviceFor(t, ["--nb-remote", nb.tcpRemote]);
  t.match(await s.request("GET", "/readyz"), { status: 200, json: { status: "ready" } });
  await nb.kill();
  await new Promise((r) => setTimeout(r, 200));
  t.match(await s.request("GET", "/readyz"), {
    status: 503,
    json: { status: "not ready", waitingFor: [/OVN Northbound \(reconnecting\)/] },
  });
  await s.review("/validate", podReview());
  const metrics = (await s.request("GET", "/metrics")).text;
  for (const le of ["0.005", "0.025", "0.1", "0.5", "1", "2.5", "10", "25"]) {
    t.match(
      metrics,
      new RegExp(
        `ovn_admission_admission_duration_seconds_bucket\\{le="${le.replace(".", "\\.")}",webhook="validate"\\}`,
      ),
    );
  }
  t.match(
    metrics,
    /ovn_admission_admissions_total\{webhook="validate",operation="CREATE",verdict="allowed",rule="pods"\} 1/,
  );
  t.match(metrics, /ovn_admission_ovsdb_transaction_duration_seconds/);
});

t.test("graceful shutdown: a request in flight finishes, new ones are refused", async (t) => {
  const { nb, handlers, switches } = await northboundWithHandler(t);
  t.teardown(() => nb.thaw());
  const s = await serviceFor(t, ["--admission-deadline", "5", "--nb-remote", nb.unixRemote], {
    routes: widgetRoutes,
    handlers,
  });
  nb.freeze();
  const inFlight = s.review("/mutate", widgetReview("inflight"));
  await new Promise((r) => setTimeout(r, 200));
  const closed = s.service.close();
  await new Promise((r) => setTimeout(r, 200));
  await t.rejects(s.request("GET", "/healthz"), { code: "ECONNREFUSED" }, "no new connections");
  nb.thaw();
  const answer = await inFlight;
  t.match(responseOf(answer), { uid: "uid-inflight", allowed: true, patchType: "JSONPatch" });
  await closed;
  t.same(await switches(), ["ls-inflight"], "its intent was carried out");
  t.ok(s.logs.some((l) => l.event === "stopped"));
});
