/** The reconciler's leader election on a real kube-apiserver's Lease. */
import { CoordinationV1Api, CoreV1Api, V1MicroTime } from "@kubernetes/client-node";
import { pino } from "pino";
import t from "tap";
import { LeaseElector } from "../../cluster/lease.js";
import { kubeFor } from "../harness/kube.js";
import { waitFor } from "../harness/wait.js";

const log = pino({ level: "silent" });
const settings = (identity: string) => ({
  namespace: "ovn-admission",
  name: "ovn-admission-reconciler",
  identity,
  leaseDurationMs: 2_000,
  retryMs: 200,
});

t.test("three replicas: one leads; when it stops, another takes over at once", async (t) => {
  const kube = await kubeFor(t);
  const core = kube.kubeConfig.makeApiClient(CoreV1Api);
  const coordination = kube.kubeConfig.makeApiClient(CoordinationV1Api);
  await core.createNamespace({ body: { metadata: { name: "ovn-admission" } } });
  const holder = async () =>
    (await coordination.readNamespacedLease({ namespace: "ovn-admission", name: "ovn-admission-reconciler" }))
      .spec?.holderIdentity;

  const changes: string[] = [];
  const electors = ["a", "b", "c"].map(
    (id) =>
      new LeaseElector(kube.kubeConfig, settings(id), log, (leading) => changes.push(`${id}:${leading}`)),
  );
  t.teardown(() => Promise.all(electors.map((e) => e.stop())));
  for (const e of electors) e.start();
  const first = await waitFor("a leader", () => electors.find((e) => e.isLeader));
  await new Promise((r) => setTimeout(r, 1_000));
  t.equal(electors.filter((e) => e.isLeader).length, 1, "exactly one leads, also a second later");
  const firstId = ["a", "b", "c"][electors.indexOf(first)] as string;
  t.equal(await holder(), firstId, "the Lease names it");

  const handedOver = Date.now();
  await first.stop();
  const second = await waitFor(
    "another leader",
    () => electors.find((e) => e !== first && e.isLeader),
    5_000,
  );
  t.ok(Date.now() - handedOver < 1_500, `a released lease is taken at once (${Date.now() - handedOver} ms)`);
  t.not(second, first);
  t.equal(electors.filter((e) => e.isLeader).length, 1);
  t.equal(changes.filter((c) => c.endsWith(":true")).length, 2, "two acquisitions in all");
});

t.test(
  "a holder that stopped renewing (a crashed replica) is replaced only after the lease duration",
  async (t) => {
    const kube = await kubeFor(t);
    const core = kube.kubeConfig.makeApiClient(CoreV1Api);
    const coordination = kube.kubeConfig.makeApiClient(CoordinationV1Api);
    await core.createNamespace({ body: { metadata: { name: "ovn-admission" } } });
    await coordination.createNamespacedLease({
      namespace: "ovn-admission",
      body: {
        metadata: { name: "ovn-admission-reconciler", namespace: "ovn-admission" },
        spec: {
          holderIdentity: "crashed",
          leaseDurationSeconds: 2,
          renewTime: new V1MicroTime(),
          leaseTransitions: 3,
        },
      },
    });
    const elector = new LeaseElector(kube.kubeConfig, settings("survivor"), log);
    t.teardown(() => elector.stop());
    const started = Date.now();
    elector.start();
    await new Promise((r) => setTimeout(r, 1_000));
    t.equal(elector.isLeader, false, "not while the holder's lease may still run");
    await waitFor("the lease to expire and be taken", () => elector.isLeader, 6_000);
    const took = Date.now() - started;
    t.ok(took >= 2_000, `taken after the 2 s duration (${took} ms)`);
    const lease = await coordination.readNamespacedLease({
      namespace: "ovn-admission",
      name: "ovn-admission-reconciler",
    });
    t.equal(lease.spec?.holderIdentity, "survivor");
    t.equal(lease.spec?.leaseTransitions, 4, "the takeover is counted");
  },
);

t.test("no namespace for the Lease: said once, clearly, and nobody leads", async (t) => {
  const kube = await kubeFor(t);
  const lines: Array<Record<string, unknown>> = [];
  const capture = pino(
    { level: "warn" },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const elector = new LeaseElector(kube.kubeConfig, { ...settings("lonely"), namespace: "nowhere" }, capture);
  t.teardown(() => elector.stop());
  elector.start();
  await new Promise((r) => setTimeout(r, 1_200));
  t.equal(elector.isLeader, false);
  t.same(
    lines.map((l) => [l.level, l.error]),
    [
      [
        50,
        "namespace nowhere does not exist (--lease-namespace): no replica reconciles until it does; kubectl create namespace nowhere, or apply manifests/overlays/*, which make it",
      ],
    ],
    "one line at error level, with what to run, for several failed attempts",
  );
  t.equal(
    elector.problem(Date.now() - 60_000),
    undefined,
    "not a problem before a lease duration of failing",
  );
  t.match(
    elector.problem(Date.now() + 60_000),
    /namespace nowhere does not exist/,
    "then what readiness says",
  );
});

t.test("outside a cluster, a missing Lease namespace is made", async (t) => {
  const kube = await kubeFor(t);
  const elector = new LeaseElector(
    kube.kubeConfig,
    { ...settings("local"), namespace: "made-for-us", createNamespace: true },
    log,
  );
  t.teardown(() => elector.stop());
  elector.start();
  await waitFor("leading", () => elector.isLeader, 10_000);
  const core = kube.kubeConfig.makeApiClient(CoreV1Api);
  t.equal(
    (await core.readNamespace({ name: "made-for-us" })).metadata?.name,
    "made-for-us",
    "namespace made",
  );
  t.equal(elector.problem(), undefined);
});

t.test("handovers while attempts are in flight: never two leaders, never a stopped one", async (t) => {
  const kube = await kubeFor(t);
  const core = kube.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: "ovn-admission" } } });
  // Retrying every 20 ms keeps an attempt in flight nearly always, so stop() meets one.
  const fast = (id: string) => new LeaseElector(kube.kubeConfig, { ...settings(id), retryMs: 20 }, log);
  const live = [fast("r0"), fast("r1")];
  const stopped: LeaseElector[] = [];
  t.teardown(() => Promise.all(live.map((e) => e.stop())));
  for (const e of live) e.start();
  let twice = 0;
  let stoppedLeading = 0;
  const sampler = setInterval(() => {
    if (live.filter((e) => e.isLeader).length > 1) twice++;
    if (stopped.some((e) => e.isLeader)) stoppedLeading++;
  }, 5);
  t.teardown(() => clearInterval(sampler));
  for (let round = 0; round < 8; round++) {
    const leader = await waitFor(`a leader in round ${round}`, () => live.find((e) => e.isLeader), 10_000);
    live.splice(live.indexOf(leader), 1);
    await leader.stop();
    stopped.push(leader);
    const next = fast(`r${round + 2}`);
    live.push(next);
    next.start();
  }
  await waitFor("a last leader", () => live.find((e) => e.isLeader), 10_000);
  clearInterval(sampler);
  t.equal(twice, 0, "never two live leaders at one sample");
  t.equal(stoppedLeading, 0, "a stopped replica never leads");
});
