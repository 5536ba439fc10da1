/** The NAT handler against a real OVN_Northbound. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { pino } from "pino";
import t, { type Test } from "tap";
import { op, OvsdbClient } from "ovsdb-client";
import { IntentRefused } from "../../domain/intents.js";
import { NatHandler } from "../../ovn/nat.js";
import { CLAIMS_ROUTER } from "../../ovn/rows.js";
import type { NatClaim, NatRow, NatWant } from "../../domain/nat.js";
import { clusterRouterOn, northboundFor, type OvsdbServer } from "../harness/index.js";

const NB = "OVN_Northbound";
const log = pino({ level: "silent" });

const nbctl = async (nb: OvsdbServer, ...args: string[]): Promise<string> =>
  (await promisify(execFile)("ovn-nbctl", [`--db=${nb.unixRemote}`, ...args])).stdout.trim();

/** `ovn-nbctl lr-nat-list` rows as "TYPE EXTERNAL LOGICAL [PORT MAC]", sorted: what routes (or, for the claims router, what is held). */
async function natList(nb: OvsdbServer, router = "ovn-cluster"): Promise<string[]> {
  const text = await nbctl(nb, "lr-nat-list", router);
  return text
    .split("\n")
    .slice(1)
    .filter(Boolean)
    .map((l) => l.trim().split(/\s+/).join(" "))
    .sort();
}

async function setup(t: Test) {
  const nb = await northboundFor(t);
  const northbound = await clusterRouterOn(t, nb.unixRemote);
  const programmed: string[] = [];
  const handler = new NatHandler(northbound, "ovn-cluster", log, (want) => programmed.push(want.pod));
  await handler.ensureClaimsRouter();
  return { nb, northbound, handler, programmed };
}

const row = (type: NatRow["type"], pod: string, external: string, logical: string): NatWant => ({
  pod,
  holds: { type, external_ip: external },
  row: { type, external_ip: external, logical_ip: logical },
});
const eip = (pod: string, external: string, logical: string) => row("dnat_and_snat", pod, external, logical);
const snat = (pod: string, external: string, logical: string) => row("snat", pod, external, logical);
const claimOf = (want: NatWant, uid = `uid-${want.pod}`): NatClaim => ({
  pod: want.pod,
  uid,
  holds: want.holds as NatClaim["holds"],
});
const stored = (pod: string, resourceVersion = "7") => ({ uid: `uid-${pod}`, resourceVersion });

t.test("a claim routes nothing; the stored pod turns it into its row on the cluster router", async (t) => {
  const { nb, handler, programmed } = await setup(t);
  const want = eip("shop/a", "172.56.0.233", "10.16.0.9");
  t.equal(await handler.claim(claimOf(want)), "claimed");
  t.same(await natList(nb), [], "nothing on the cluster router");
  t.same(
    await natList(nb, CLAIMS_ROUTER),
    ["dnat_and_snat 172.56.0.233 0.0.0.0"],
    "held on the claims router",
  );
  t.equal(await nbctl(nb, "get", "Logical_Router", CLAIMS_ROUTER, "enabled"), "false", "a disabled router");
  t.equal(
    await nbctl(nb, "--bare", "--columns=ports", "list", "Logical_Router", CLAIMS_ROUTER),
    "",
    "no ports",
  );
  t.equal(await handler.claim(claimOf(want)), "held", "claimed twice, held once");
  const [claimUuid] = (await nbctl(nb, "--bare", "--columns=_uuid", "list", "NAT")).split(/\n+/);

  t.equal(await handler.program(want, stored("shop/a")), "written");
  t.same(await natList(nb), ["dnat_and_snat 172.56.0.233 10.16.0.9"]);
  t.same(await natList(nb, CLAIMS_ROUTER), [], "the claim moved");
  t.equal(await nbctl(nb, "--bare", "--columns=_uuid", "list", "NAT"), claimUuid, "the same row, moved");
  t.match(
    await nbctl(nb, "get", "NAT", claimUuid as string, "external_ids"),
    /resource-version"="7".*uid"="uid-shop\/a"/,
  );
  t.same(programmed, ["shop/a"]);
});

t.test(
  "written, unchanged, moved, released from the stored pod: one row per pod, as lr-nat-list shows it",
  async (t) => {
    const { nb, handler, programmed } = await setup(t);
    t.equal(await handler.program(eip("shop/a", "172.56.0.233", "10.16.0.9"), stored("shop/a")), "written");
    t.same(await natList(nb), ["dnat_and_snat 172.56.0.233 10.16.0.9"]);
    t.equal(await handler.program(eip("shop/a", "172.56.0.233", "10.16.0.9"), stored("shop/a")), "unchanged");
    // The admission of the change claims; the stored change moves.
    await handler.claim(claimOf(eip("shop/a", "172.56.0.221", "10.16.0.9")));
    t.same(await natList(nb), ["dnat_and_snat 172.56.0.233 10.16.0.9"], "a claim alone moves nothing");
    t.equal(await handler.program(eip("shop/a", "172.56.0.221", "10.16.0.9"), stored("shop/a")), "written");
    t.same(await natList(nb), ["dnat_and_snat 172.56.0.221 10.16.0.9"], "moved, not added");
    t.equal(await handler.program(snat("shop/b", "172.56.0.200", "10.16.0.10"), stored("shop/b")), "written");
    t.equal(
      await handler.program(snat("shop/c", "172.56.0.200", "10.16.0.11"), stored("shop/c")),
      "written",
      "SNAT is shared",
    );
    t.equal(
      await handler.program(
        { pod: "shop/c", holds: { type: "snat", external_ip: "172.56.0.200" } },
        stored("shop/c"),
      ),
      "waiting",
      "a stored version without the IP leaves the row as it is",
    );
    t.equal(await handler.release("shop/a"), "released");
    t.equal(await handler.release("shop/a"), "unchanged");
    t.same(await natList(nb), ["snat 172.56.0.200 10.16.0.10", "snat 172.56.0.200 10.16.0.11"]);
    t.same(programmed, ["shop/a", "shop/a", "shop/a", "shop/b", "shop/c"], "each row in place is reported");
    t.equal(
      (await nbctl(nb, "--bare", "--columns=_uuid", "list", "NAT")).split(/\n+/).length,
      2,
      "no orphan rows",
    );
  },
);

t.test("waiting: a pod without its IP keeps its claim until a stored version has one", async (t) => {
  const { nb, handler } = await setup(t);
  await handler.claim({
    pod: "shop/a",
    uid: "",
    holds: { type: "dnat_and_snat", external_ip: "172.56.0.233" },
  });
  t.equal(
    await handler.program(
      { pod: "shop/a", holds: { type: "dnat_and_snat", external_ip: "172.56.0.233" } },
      stored("shop/a"),
    ),
    "waiting",
  );
  t.same(await natList(nb, CLAIMS_ROUTER), ["dnat_and_snat 172.56.0.233 0.0.0.0"]);
  t.equal(
    await handler.program(eip("shop/a", "172.56.0.233", "10.16.0.9"), stored("shop/a")),
    "written",
    "a claim without uid serves the pod",
  );
  t.same(await natList(nb), ["dnat_and_snat 172.56.0.233 10.16.0.9"]);
});

t.test("distributed EIP: logical_port and external_mac", async (t) => {
  const { nb, handler } = await setup(t);
  await handler.program(
    {
      pod: "shop/a",
      holds: { type: "dnat_and_snat", external_ip: "172.56.0.233" },
      row: {
        type: "dnat_and_snat",
        external_ip: "172.56.0.233",
        logical_ip: "10.16.0.9",
        logical_port: "a.shop",
        external_mac: "0a:58:0a:10:00:09",
      },
    },
    stored("shop/a"),
  );
  t.same(await natList(nb), ["dnat_and_snat 172.56.0.233 10.16.0.9 0a:58:0a:10:00:09 a.shop"]);
});

t.test(
  "a taken address is refused with its holder named, claimed or routing; nothing is written",
  async (t) => {
    const { nb, handler } = await setup(t);
    await handler.program(eip("shop/a", "172.56.0.233", "10.16.0.9"), stored("shop/a"));
    await handler.claim(claimOf(snat("shop/s", "172.56.0.200", "10.16.0.20")));
    const cases: Array<[NatWant, string]> = [
      [
        eip("shop/b", "172.56.0.233", "10.16.0.10"),
        'metadata.annotations["ovn.kubernetes.io/eip"]: 172.56.0.233 cannot be this pod\'s EIP: it is already the EIP of pod shop/a',
      ],
      [
        eip("shop/b", "172.56.0.200", "10.16.0.10"),
        'metadata.annotations["ovn.kubernetes.io/eip"]: 172.56.0.200 cannot be this pod\'s EIP: it is already the SNAT address of pod shop/s',
      ],
      [
        snat("shop/b", "172.56.0.233", "10.16.0.10"),
        'metadata.annotations["ovn.kubernetes.io/snat"]: 172.56.0.233 cannot be this pod\'s SNAT address: it is already the EIP of pod shop/a',
      ],
    ];
    for (const [want, message] of cases) {
      const claimed = await handler.claim(claimOf(want)).catch((e: unknown) => e);
      t.ok(claimed instanceof IntentRefused, `claim ${want.row?.external_ip}`);
      t.equal((claimed as Error).message, message);
      const programmed = await handler.program(want, stored(want.pod)).catch((e: unknown) => e);
      t.equal((programmed as Error).message, message, `program ${want.row?.external_ip}`);
    }
    await nbctl(nb, "lr-nat-add", "ovn-cluster", "dnat_and_snat", "172.56.0.50", "10.16.0.50");
    const foreign = await handler
      .claim(claimOf(eip("shop/b", "172.56.0.50", "10.16.0.10")))
      .catch((e: unknown) => e);
    t.equal(
      (foreign as Error).message,
      'metadata.annotations["ovn.kubernetes.io/eip"]: 172.56.0.50 cannot be this pod\'s EIP: it is already the EIP of a NAT row not made by ovn-admission (dnat_and_snat 172.56.0.50 -> 10.16.0.50)',
    );
    t.same(await natList(nb), [
      "dnat_and_snat 172.56.0.233 10.16.0.9",
      "dnat_and_snat 172.56.0.50 10.16.0.50",
    ]);
    t.same(await natList(nb, CLAIMS_ROUTER), ["snat 172.56.0.200 0.0.0.0"]);
    const moved = await handler
      .program(eip("shop/a", "172.56.0.50", "10.16.0.9"), stored("shop/a"))
      .catch((e: unknown) => e);
    t.ok(moved instanceof IntentRefused, "a refused move keeps the old row");
    t.match(await natList(nb), ["dnat_and_snat 172.56.0.233 10.16.0.9"]);
  },
);

t.test("no cluster router, no claims router: refused with the router named", async (t) => {
  const { handler, northbound } = await setup(t);
  await northbound.transact(NB, [op.delete("Logical_Router", [["name", "==", "ovn-cluster"]])]);
  await t.rejects(handler.program(eip("shop/a", "172.56.0.233", "10.16.0.9"), stored("shop/a")), {
    name: "IntentRefused",
    message:
      "logical router ovn-cluster does not exist in OVN Northbound (made by the CNI; see --cluster-router)",
  });
  await northbound.transact(NB, [op.delete("Logical_Router", [])]);
  await t.rejects(handler.claim(claimOf(eip("shop/a", "172.56.0.233", "10.16.0.9"))), {
    name: "IntentRefused",
    message: /ovn-admission-claims .* does not exist/,
  });
});

t.test("the same pod through two writers at once ends with one row", async (t) => {
  const { nb, northbound } = await setup(t);
  const other = new OvsdbClient({ remote: nb.tcpRemote, database: NB });
  await other.connect();
  t.teardown(() => other.close());
  const a = new NatHandler(northbound, "ovn-cluster", log);
  const b = new NatHandler(other, "ovn-cluster", log);
  for (let i = 0; i < 20; i++) {
    const want = eip(`shop/p${i}`, `172.56.1.${i + 1}`, `10.16.1.${i + 1}`);
    await Promise.all([a.claim(claimOf(want)), b.claim(claimOf(want))]);
    await Promise.all([a.program(want, stored(want.pod)), b.program(want, stored(want.pod))]);
  }
  t.equal((await natList(nb)).length, 20, "one row per pod, never two");
  t.same(await natList(nb, CLAIMS_ROUTER), [], "no claim left over");
});

async function age(nb: OvsdbServer, external: string): Promise<void> {
  const uuid = (
    await nbctl(nb, "--bare", "--columns=_uuid", "find", "NAT", `external_ip=${external}`)
  ).trim();
  await nbctl(nb, "set", "NAT", uuid, `external_ids:"ovn-admission.io/since"=0`);
}

t.test(
  "reconcile: rows come back, rows of gone pods and claims no stored pod asks for go after the grace",
  async (t) => {
    const { nb, handler } = await setup(t);
    await handler.program(eip("shop/kept", "172.56.0.1", "10.16.0.1"), stored("shop/kept"));
    await handler.program(eip("shop/gone", "172.56.0.2", "10.16.0.2"), stored("shop/gone"));
    await handler.program(eip("shop/young", "172.56.0.3", "10.16.0.3"), stored("shop/young"));
    await age(nb, "172.56.0.2");
    // Claims: one whose pod was never stored (a forged review), one of an earlier pod of the same name,
    // one whose stored pod asks for it (its IP comes later).
    await handler.claim(claimOf(eip("shop/forged", "172.56.0.5", "10.16.0.5")));
    await handler.claim({ ...claimOf(eip("shop/again", "172.56.0.6", "10.16.0.6")), uid: "an-earlier-uid" });
    await handler.claim(claimOf(eip("shop/later", "172.56.0.7", "10.16.0.7")));
    for (const ip of ["172.56.0.5", "172.56.0.6", "172.56.0.7"]) await age(nb, ip);
    const asks = (want: NatWant) => ({ want, stored: stored(want.pod) });
    const wanted = [
      asks(eip("shop/kept", "172.56.0.1", "10.16.0.1")),
      asks(eip("shop/lost", "172.56.0.4", "10.16.0.4")),
      asks({ pod: "shop/again", holds: { type: "dnat_and_snat", external_ip: "172.56.0.6" } }),
      asks({ pod: "shop/later", holds: { type: "dnat_and_snat", external_ip: "172.56.0.7" } }),
    ];
    const result = await handler.reconcile(wanted, 60_000);
    t.same(result.written, ["shop/lost"]);
    t.same(result.released, ["shop/gone"]);
    t.same(result.claimsReleased.sort(), ["shop/again 172.56.0.6", "shop/forged 172.56.0.5"]);
    t.same(
      result.programmed.map((w) => w.pod),
      ["shop/kept"],
    );
    t.same(await natList(nb), [
      "dnat_and_snat 172.56.0.1 10.16.0.1",
      "dnat_and_snat 172.56.0.3 10.16.0.3",
      "dnat_and_snat 172.56.0.4 10.16.0.4",
    ]);
    t.same(
      await natList(nb, CLAIMS_ROUTER),
      ["dnat_and_snat 172.56.0.7 0.0.0.0"],
      "the stored pod's claim stays",
    );
    const young = await handler.reconcile(wanted, 60_000);
    t.same(young.released, [], "a young row is not released for a view that lags behind");
    const later = await handler.reconcile(wanted, 0);
    t.same(later.released, ["shop/young"], "past the grace");
    await handler.program(eip("shop/young", "172.56.0.3", "10.16.0.3"), stored("shop/young"));
    const dropped = await handler.reconcile([...wanted, asks({ pod: "shop/young" })], 60_000);
    t.same(dropped.released, ["shop/young"], "a stored pod that asks for nothing loses its row at once");
    const conflict = await handler.reconcile(
      [...wanted, asks(eip("shop/twin", "172.56.0.4", "10.16.0.9"))],
      0,
    );
    t.match(conflict.conflicts, [/^shop\/twin: .*already the EIP of pod shop\/lost/]);
  },
);
