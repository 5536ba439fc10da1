/**
 * Pods racing for addresses through three service instances (as three
 * replicas) whose views know nothing of each other's pods: only the
 * Northbound's `wait`s keep an address to one pod. A /25 has fewer addresses
 * than pods, so some are told the subnet is full. Against a standalone
 * database, and a 3-member RAFT cluster whose leader is killed mid-run.
 */
import t, { type Test } from "tap";
import { op, type OvsdbClient } from "ovsdb-client";
import { ClusterState } from "../cluster/state.js";
import { podReview } from "./fixtures/index.js";
import { clusterRouterOn, northboundFor, raftNorthboundFor } from "./harness/index.js";
import { responseOf, serviceFor, type TestService } from "./harness/service.js";

const NB = "OVN_Northbound";
const PODS = 200;
/** 10.16.0.0/25 less the network, the gateway and the broadcast address. */
const USABLE = 125;

const subnetView = () =>
  ClusterState.of({
    Subnet: [
      {
        metadata: { name: "ovn-default" },
        spec: { cidrBlock: "10.16.0.0/25", gateway: "10.16.0.1", default: true },
      },
    ],
    Pod: [],
  });

function reviewOf(name: string) {
  return podReview((r) => {
    r.request.uid = `uid-${name}`;
    r.request.name = name;
    r.request.object.metadata.name = name;
    r.request.object.metadata.annotations = {};
    (r.request.object.spec as { nodeName?: string }).nodeName = "node-1";
  });
}

async function replicas(t: Test, remote: string): Promise<TestService[]> {
  return Promise.all(
    [0, 1, 2].map(() =>
      serviceFor(t, ["--nb-remote", remote, "--admission-deadline", "4"], { view: subnetView() }),
    ),
  );
}

interface Answer {
  name: string;
  allowed: boolean;
  ip: string | undefined;
  message: string;
}

async function race(services: TestService[], during?: (answered: number) => void): Promise<Answer[]> {
  let answered = 0;
  return Promise.all(
    Array.from({ length: PODS }, async (_, i) => {
      const name = `racer-${i}`;
      const response = responseOf(
        await (services[i % services.length] as TestService).review("/mutate", reviewOf(name)),
      );
      during?.(++answered);
      const patch = response.patch
        ? (JSON.parse(Buffer.from(String(response.patch), "base64").toString()) as Array<{
            path: string;
            value: unknown;
          }>)
        : [];
      const annotations = patch.find((p) => p.path === "/metadata/annotations")?.value as
        Record<string, string> | undefined;
      const single = patch.find((p) => p.path.endsWith("ip_address"))?.value as string | undefined;
      return {
        name,
        allowed: response.allowed,
        ip: annotations?.["ovn.kubernetes.io/ip_address"] ?? single,
        message: (response.status as { message?: string } | undefined)?.message ?? "",
      };
    }),
  );
}

async function claimedPorts(client: OvsdbClient): Promise<Array<{ pod: string; ip: string }>> {
  const [ports] = await client.transact(NB, [
    op.select("Logical_Switch_Port", [], ["addresses", "external_ids"]),
  ]);
  return (ports?.rows ?? [])
    .map((r) => ({
      pod: (r.external_ids as Record<string, string>)["ovn-admission.io/pod"] ?? "",
      ip: String(((r.addresses as string[]) ?? [])[0] ?? "").split(" ")[1] ?? "",
    }))
    .filter((p) => p.pod);
}

function check(
  t: Test,
  answers: Answer[],
  ports: Array<{ pod: string; ip: string }>,
  failedOtherwise: number,
) {
  const addressed = answers.filter((a) => a.allowed && a.ip);
  const full = answers.filter(
    (a) =>
      !a.allowed &&
      /subnet ovn-default \(10\.16\.0\.0\/25, 128 addresses\) has no free address left/.test(a.message),
  );
  t.equal(new Set(addressed.map((a) => a.ip)).size, addressed.length, "no address given twice");
  t.equal(addressed.length + full.length + failedOtherwise, PODS, "every pod either addressed or told why");
  t.same(
    ports.map((p) => `${p.pod} ${p.ip}`).sort(),
    addressed.map((a) => `shop/${a.name} ${a.ip}`).sort(),
    "the ports are exactly the addressed pods', with their addresses",
  );
  return { addressed: addressed.length, full: full.length };
}

t.test(
  "200 pods for 125 addresses through 3 instances: 125 addressed, 75 told the subnet is full",
  async (t) => {
    const nb = await northboundFor(t);
    const client = await clusterRouterOn(t, nb.unixRemote);
    const services = await replicas(t, nb.tcpRemote);
    const started = performance.now();
    const answers = await race(services);
    const counts = check(t, answers, await claimedPorts(client), 0);
    t.same(counts, { addressed: USABLE, full: PODS - USABLE });
    t.comment(`${PODS} admissions in ${Math.round(performance.now() - started)} ms`);
  },
);

t.test("the RAFT leader killed mid-run: still no address twice, no port lost, every pod told", async (t) => {
  const cluster = await raftNorthboundFor(t);
  const client = await clusterRouterOn(t, cluster.remote);
  const services = await replicas(t, cluster.remote);
  const leader = await cluster.leader();
  let killed: Promise<void> | undefined;
  const answers = await race(services, (answered) => {
    if (answered === 40) killed = cluster.members[leader]?.kill();
  });
  await killed;
  t.ok(killed, "the leader was killed after 40 answers");
  t.not(await cluster.leader(10_000), leader, "another member leads");
  const other = answers.filter((a) => !a.allowed && !/no free address left/.test(a.message));
  t.comment(
    `${answers.filter((a) => a.allowed).length} addressed, ${other.length} failed otherwise (${[...new Set(other.map((o) => o.message))].join(" | ")})`,
  );
  await client.connect({ timeoutMs: 10_000 });
  const counts = check(t, answers, await claimedPorts(client), other.length);
  t.ok(counts.addressed > 0, "pods were addressed across the leader change");
});
