/**
 * Pods racing for EIPs through three service instances (as three replicas),
 * whose views know nothing of each other's pods: only the Northbound
 * transaction can keep an EIP to one pod. Against a standalone database, and
 * against a 3-member RAFT cluster whose leader is killed mid-race.
 */
import { pino } from "pino";
import t, { type Test } from "tap";
import { op, OvsdbClient } from "ovsdb-client";
import { ClusterState } from "../cluster/state.js";
import { NatHandler } from "../ovn/nat.js";
import { natWantOf } from "../domain/nat.js";
import type { KubeObject } from "../domain/kube.js";
import { podReview, SEED_GATEWAY } from "./fixtures/index.js";
import { clusterRouterOn, northboundFor, raftNorthboundFor } from "./harness/index.js";
import { responseOf, serviceFor, type TestService } from "./harness/service.js";

const NB = "OVN_Northbound";
const PODS = 200;
const EIPS = 20;

const gatewayView = () =>
  ClusterState.of({
    ConfigMap: [
      { metadata: { name: "ovn-external-gw-config", namespace: "kube-system" }, data: { ...SEED_GATEWAY } },
    ],
    Pod: [],
  });

interface Racer {
  name: string;
  eip: string;
  ip: string;
}

function racers(round: number): Racer[] {
  return Array.from({ length: PODS }, (_, i) => ({
    name: `race-${round}-${i}`,
    eip: `172.56.${round}.${(i % EIPS) + 10}`,
    ip: `10.16.${round}.${i + 1}`,
  }));
}

function reviewOf(racer: Racer) {
  return podReview((r) => {
    r.request.uid = `uid-${racer.name}`;
    r.request.name = racer.name;
    r.request.object.metadata.name = racer.name;
    r.request.object.metadata.uid = `pod-uid-${racer.name}`;
    r.request.object.metadata.annotations = {
      "ovn.kubernetes.io/eip": racer.eip,
      "ovn.kubernetes.io/ip_address": racer.ip,
    };
  });
}

async function replicas(t: Test, remote: string): Promise<TestService[]> {
  return Promise.all(
    [0, 1, 2].map(() =>
      // 600 admissions, each a new TLS connection, share two cores with three services and the databases.
      serviceFor(t, ["--nb-remote", remote, "--admission-deadline", "4"], { view: gatewayView() }),
    ),
  );
}

/** Every racer's admission, sent all at once, spread over the replicas. */
function race(services: TestService[], round: Racer[], during?: (answered: number) => void) {
  let answered = 0;
  return Promise.all(
    round.map(async (racer, i) => {
      const answer = await (services[i % services.length] as TestService).review(
        "/validate",
        reviewOf(racer),
      );
      during?.(++answered);
      const response = responseOf(answer);
      return {
        racer,
        allowed: response.allowed,
        message: (response.status as { message?: string })?.message ?? "",
      };
    }),
  );
}

async function natRows(client: OvsdbClient): Promise<Array<{ external_ip: string; pod: string }>> {
  const [nat] = await client.transact(NB, [op.select("NAT", [], ["external_ip", "external_ids"])]);
  return (nat?.rows ?? []).map((r) => ({
    external_ip: String(r.external_ip),
    pod: (r.external_ids as Record<string, string>)["ovn-admission.io/pod"] ?? "",
  }));
}

/** How many NAT rows the router routes. */
async function routed(client: OvsdbClient, router: string): Promise<number> {
  const [found] = await client.transact(NB, [op.select("Logical_Router", [["name", "==", router]], ["nat"])]);
  return ((found?.rows?.[0]?.nat as string[] | undefined) ?? []).length;
}

t.test(
  "200 racing CREATEs for 20 EIPs through 3 instances: 20 NAT rows, 180 denials, every round",
  async (t) => {
    const nb = await northboundFor(t);
    const client = await clusterRouterOn(t, nb.unixRemote);
    const services = await replicas(t, nb.tcpRemote);
    for (let round = 1; round <= 4; round++) {
      const started = performance.now();
      const results = await race(services, racers(round));
      const ms = Math.round(performance.now() - started);
      const allowed = results.filter((r) => r.allowed);
      const denied = results.filter((r) => !r.allowed);
      t.equal(allowed.length, EIPS, `round ${round}: one pod per EIP admitted`);
      t.equal(denied.length, PODS - EIPS, `round ${round}: every other pod denied`);
      const unclear = denied.filter(
        (d) =>
          !/ovn\.kubernetes\.io\/eip"\]: 172\.56\.\d+\.\d+ cannot be this pod's EIP: it is already the EIP of pod shop\/race-/.test(
            d.message,
          ),
      );
      t.same(unclear, [], `round ${round}: every denial names the pod holding the EIP`);
      const rows = (await natRows(client)).filter((r) => r.external_ip.startsWith(`172.56.${round}.`));
      t.equal(rows.length, EIPS, `round ${round}: exactly one NAT row per EIP`);
      t.same(
        rows.map((r) => r.pod).sort(),
        allowed.map((a) => `shop/${a.racer.name}`).sort(),
        `round ${round}: the rows are exactly the admitted pods'`,
      );
      for (const d of denied) {
        const holder = /of pod (shop\/\S+)$/.exec(d.message)?.[1];
        if (!rows.some((r) => r.pod === holder && r.external_ip === d.racer.eip))
          t.fail(`${d.racer.name}: the named holder ${holder} does not hold ${d.racer.eip}`);
      }
      t.equal(await routed(client, "ovn-cluster"), 0, `round ${round}: admissions alone route nothing`);
      t.equal(
        await routed(client, "ovn-admission-claims"),
        EIPS * round,
        `round ${round}: the claims hold them`,
      );
      t.comment(`round ${round}: ${PODS} admissions in ${ms} ms`);
    }
  },
);

t.test(
  "the RAFT leader killed mid-race: once reconciled, no admitted pod lacks its row, no row lacks its pod",
  async (t) => {
    const cluster = await raftNorthboundFor(t);
    const client = await clusterRouterOn(t, cluster.remote);
    const services = await replicas(t, cluster.remote);
    const leader = await cluster.leader();
    let killed: Promise<void> | undefined;
    const results = await race(services, racers(1), (answered) => {
      if (answered === 40) killed = cluster.members[leader]?.kill();
    });
    await killed;
    t.ok(killed, "the leader was killed after 40 answers");
    t.not(await cluster.leader(10_000), leader, "another member leads");

    const allowed = results.filter((r) => r.allowed);
    const failed = results.filter((r) => !r.allowed && !/already the EIP of pod/.test(r.message));
    t.comment(
      `${allowed.length} admitted, ${failed.length} failed otherwise (${[...new Set(failed.map((f) => f.message))].join(" | ")})`,
    );
    const perEip = new Map<string, string[]>();
    for (const a of allowed) perEip.set(a.racer.eip, [...(perEip.get(a.racer.eip) ?? []), a.racer.name]);
    t.same(
      [...perEip].filter(([, pods]) => pods.length > 1),
      [],
      "no EIP admitted twice",
    );

    // What the reconciler does once the view holds the admitted pods: rows for them, none for anyone else.
    const admittedPods: KubeObject[] = allowed.map((a) => ({
      metadata: {
        name: a.racer.name,
        namespace: "shop",
        uid: `pod-uid-${a.racer.name}`,
        annotations: { "ovn.kubernetes.io/eip": a.racer.eip, "ovn.kubernetes.io/ip_address": a.racer.ip },
      },
      status: { phase: "Pending" },
    }));
    const view = ClusterState.of({ Pod: admittedPods });
    // The admitted pods as the API server would store them: their claims become their rows.
    const wanted = view.podsWithNat().map((p) => ({
      want: natWantOf(p.namespace, p.name, p.annotations, "centralized", "kube-ovn"),
      stored: { uid: p.uid, resourceVersion: "1" },
    }));
    const nat = new NatHandler(client, "ovn-cluster", pino({ level: "silent" }));
    await client.connect({ timeoutMs: 10_000 });
    const result = await nat.reconcile(wanted, 0);
    t.comment(`reconcile: ${JSON.stringify({ ...result, programmed: result.programmed.length })}`);
    const rows = await natRows(client);
    t.same(
      rows.map((r) => r.pod).sort(),
      allowed.map((a) => `shop/${a.racer.name}`).sort(),
      "every admitted pod has its row, and every row has its admitted pod",
    );
    t.equal(new Set(rows.map((r) => r.external_ip)).size, rows.length, "no EIP in two rows");
    t.equal(await routed(client, "ovn-cluster"), rows.length, "the stored pods' claims became their rows");
    t.ok(allowed.length > 0, "pods were admitted across the leader change");
  },
);

t.test(
  "a taken address is a 403 denial whatever the failure mode; policy warn admits it with a warning",
  async (t) => {
    const nb = await northboundFor(t);
    const client = await clusterRouterOn(t, nb.unixRemote);
    const view = gatewayView();
    view.replace("Namespace", [
      { metadata: { name: "lenient", labels: { "ovn-admission.io/policy": "warn" } } },
    ]);
    const s = await serviceFor(t, ["--nb-remote", nb.unixRemote, "--validate-failure-mode", "allow"], {
      view,
    });
    const first = responseOf(
      await s.review("/validate", reviewOf({ name: "first", eip: "172.56.0.50", ip: "10.16.0.1" })),
    );
    t.equal(first.allowed, true);
    const second = responseOf(
      await s.review("/validate", reviewOf({ name: "second", eip: "172.56.0.50", ip: "10.16.0.2" })),
    );
    t.match(second, {
      allowed: false,
      status: {
        code: 403,
        reason: "Forbidden",
        message: `metadata.annotations["ovn.kubernetes.io/eip"]: 172.56.0.50 cannot be this pod's EIP: it is already the EIP of pod shop/first`,
      },
    });
    const lenient = reviewOf({ name: "third", eip: "172.56.0.50", ip: "10.16.0.3" });
    lenient.request.namespace = "lenient";
    const warned = responseOf(await s.review("/validate", lenient));
    t.match(warned, {
      allowed: true,
      warnings: [/^not programmed: .*already the EIP of pod shop\/first$/],
    });
    t.same(
      (await natRows(client)).map((r) => r.pod),
      ["shop/first"],
      "only the holder has a row",
    );
  },
);
