/** Pod addresses and logical switch ports against a real OVN_Northbound. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { pino } from "pino";
import t, { type Test } from "tap";
import { IntentRefused } from "../../domain/intents.js";
import { NatHandler } from "../../ovn/nat.js";
import { PortHandler } from "../../ovn/ports.js";
import { CLAIMS_SWITCH, claimUuid } from "../../ovn/rows.js";
import type { PortClaim } from "../../domain/port-claims.js";
import { northboundClientFor, northboundFor, type OvsdbServer } from "../harness/index.js";

const log = pino({ level: "silent" });
const nbctl = async (nb: OvsdbServer, ...args: string[]): Promise<string> =>
  (await promisify(execFile)("ovn-nbctl", [`--db=${nb.unixRemote}`, ...args])).stdout.trim();

async function handlerOn(t: Test, nb: OvsdbServer): Promise<PortHandler> {
  const client = await northboundClientFor(t, nb.unixRemote);
  const handler = new PortHandler(client, log);
  await handler.start();
  return handler;
}

async function setup(t: Test) {
  const nb = await northboundFor(t);
  await nbctl(nb, "ls-add", "ovn-default");
  const handler = await handlerOn(t, nb);
  return { nb, handler };
}

const claimFor = (name: string, extra: Partial<PortClaim> = {}): PortClaim => ({
  pod: `shop/${name}`,
  uid: `uid-${name}`,
  port: `${name}.shop`,
  subnet: "ovn-default",
  cidrs: ["10.16.0.0/29"],
  gateways: ["10.16.0.1"],
  exclude: [],
  ...extra,
});

/** `lsp-list` of a switch as "name (enabled) addresses", sorted. */
async function portsOn(nb: OvsdbServer, ls: string): Promise<string[]> {
  const names = (await nbctl(nb, "--bare", "--columns=name", "find", "Logical_Switch_Port")).split(/\n+/);
  const listed = new Set((await nbctl(nb, "lsp-list", ls)).split("\n").map((l) => /\((.*)\)/.exec(l)?.[1]));
  const out: string[] = [];
  for (const name of names.filter((n) => n && listed.has(n))) {
    const addresses = await nbctl(nb, "lsp-get-addresses", name);
    const enabled = await nbctl(nb, "lsp-get-enabled", name);
    out.push(`${name} ${enabled} ${addresses}`);
  }
  return out.sort();
}

t.test(
  "addresses in order, skipping the network, the gateway, excluded ranges and the broadcast; then a clear 403",
  async (t) => {
    const { nb, handler } = await setup(t);
    const exclude = ["10.16.0.3..10.16.0.4"];
    const given: string[] = [];
    for (const name of ["a", "b", "c"]) {
      const { annotations } = await handler.claim(claimFor(name, { exclude }));
      given.push(annotations?.["ovn.kubernetes.io/ip_address"] ?? "");
    }
    t.same(given, ["10.16.0.2", "10.16.0.5", "10.16.0.6"]);
    const full = await handler.claim(claimFor("d", { exclude })).catch((e: unknown) => e);
    t.ok(full instanceof IntentRefused);
    t.equal(
      (full as Error).message,
      "subnet ovn-default (10.16.0.0/29, 8 addresses) has no free address left for pod shop/d",
    );
    t.same(await portsOn(nb, CLAIMS_SWITCH), [
      "a.shop disabled 0a:58:0a:10:00:02 10.16.0.2",
      "b.shop disabled 0a:58:0a:10:00:05 10.16.0.5",
      "c.shop disabled 0a:58:0a:10:00:06 10.16.0.6",
    ]);
    t.same(await portsOn(nb, "ovn-default"), [], "claims carry nothing until the pod is stored");
  },
);

t.test(
  "the annotations: Kube-OVN's and seed 002's ovn JSON, dual stack one address per family",
  async (t) => {
    const { handler } = await setup(t);
    const dual = await handler.claim(
      claimFor("web", {
        cidrs: ["10.16.0.0/16", "fd00:10:16::/64"],
        gateways: ["10.16.0.1", "fd00:10:16::1"],
      }),
    );
    t.same(dual.annotations, {
      "ovn.kubernetes.io/logical_switch": "ovn-default",
      "ovn.kubernetes.io/ip_address": "10.16.0.2,fd00:10:16::2",
      "ovn.kubernetes.io/mac_address": "0a:58:0a:10:00:02",
      "ovn.kubernetes.io/gateway": "10.16.0.1,fd00:10:16::1",
      "ovn.kubernetes.io/cidr": "10.16.0.0/16,fd00:10:16::/64",
      "ovn.kubernetes.io/allocated": "true",
      ovn: '{"ip_address":"10.16.0.2/16,fd00:10:16::2/64","mac_address":"0a:58:0a:10:00:02","gateway_ip":"10.16.0.1,fd00:10:16::1"}',
    });
    const again = await handler.claim(
      claimFor("web", {
        cidrs: ["10.16.0.0/16", "fd00:10:16::/64"],
        gateways: ["10.16.0.1", "fd00:10:16::1"],
      }),
    );
    t.same(again.annotations, dual.annotations, "a pod that holds an address keeps it");
  },
);

t.test("asked-for addresses, pools and MACs: taken ones are refused naming the holder", async (t) => {
  const { nb, handler } = await setup(t);
  const fixed = await handler.claim(claimFor("fixed", { ips: ["10.16.0.5"], mac: "00:00:00:AA:BB:CC" }));
  t.equal(fixed.annotations?.["ovn.kubernetes.io/ip_address"], "10.16.0.5");
  t.equal(fixed.annotations?.["ovn.kubernetes.io/mac_address"], "00:00:00:aa:bb:cc");
  await t.rejects(handler.claim(claimFor("twin", { ips: ["10.16.0.5"] })), {
    name: "IntentRefused",
    message:
      'metadata.annotations["ovn.kubernetes.io/ip_address"]: 10.16.0.5 is already held by pod shop/fixed in subnet ovn-default',
  });
  await t.rejects(handler.claim(claimFor("mac-twin", { mac: "00:00:00:aa:bb:cc" })), {
    name: "IntentRefused",
    message: /mac_address"\]: 00:00:00:aa:bb:cc is already the MAC of pod shop\/fixed/,
  });
  const pooled = await handler.claim(claimFor("pooled", { pool: ["10.16.0.5", "10.16.0.6"] }));
  t.equal(
    pooled.annotations?.["ovn.kubernetes.io/ip_address"],
    "10.16.0.6",
    "the first free address of the pool",
  );
  await t.rejects(handler.claim(claimFor("pool-full", { pool: ["10.16.0.5", "10.16.0.6"] })), {
    message: /ip_pool"\]: every address of the pool \(10\.16\.0\.5,10\.16\.0\.6\) is held/,
  });
  const preview = await handler.claim(claimFor("dry"), true);
  t.equal((await portsOn(nb, CLAIMS_SWITCH)).length, 2, "dryRun holds nothing");
  const real = await handler.claim(claimFor("dry"));
  t.equal(
    preview.annotations?.["ovn.kubernetes.io/ip_address"],
    real.annotations?.["ovn.kubernetes.io/ip_address"],
    "dryRun answers what the admission then gives",
  );
});

t.test(
  "a pod's admission retried while its first claim is in flight gets the same address, one port",
  async (t) => {
    const { nb, handler } = await setup(t);
    // The API server retries a webhook call that timed out: both admissions ask for the pod's address at once.
    const [first, retry, other] = await Promise.allSettled([
      handler.claim(claimFor("web", { ips: ["10.16.0.4"] })),
      handler.claim(claimFor("web", { ips: ["10.16.0.4"] })),
      handler.claim(claimFor("rival", { ips: ["10.16.0.4"] })),
    ]);
    t.equal(
      first.status === "fulfilled" && first.value.annotations?.["ovn.kubernetes.io/ip_address"],
      "10.16.0.4",
    );
    t.equal(
      retry.status === "fulfilled" && retry.value.annotations?.["ovn.kubernetes.io/ip_address"],
      "10.16.0.4",
    );
    t.match(
      other.status === "rejected" && (other.reason as Error).message,
      /10\.16\.0\.4 is already held by pod shop\/web/,
    );
    t.same(await portsOn(nb, CLAIMS_SWITCH), ["web.shop disabled 0a:58:0a:10:00:04 10.16.0.4"]);
  },
);

t.test("the stored pod moves its claim to the subnet's switch, enabled; release and reconcile", async (t) => {
  const { nb, handler } = await setup(t);
  const { annotations } = await handler.claim(claimFor("web"));
  const stored = {
    pod: "shop/web",
    port: "web.shop",
    uid: "uid-web",
    resourceVersion: "12",
    subnet: "ovn-default",
    ips: [annotations?.["ovn.kubernetes.io/ip_address"] as string],
    mac: annotations?.["ovn.kubernetes.io/mac_address"] as string,
  };
  t.equal(await handler.program(stored), "written");
  t.same(await portsOn(nb, "ovn-default"), ["web.shop enabled 0a:58:0a:10:00:02 10.16.0.2"]);
  t.same(await portsOn(nb, CLAIMS_SWITCH), []);
  t.equal(await nbctl(nb, "lsp-get-port-security", "web.shop"), "0a:58:0a:10:00:02 10.16.0.2");
  t.match(
    await nbctl(nb, "get", "Logical_Switch_Port", "web.shop", "external_ids"),
    /resource-version"="12"/,
  );
  t.equal(await handler.program(stored), "unchanged");

  // A pod admitted while we were away: its port is made from the stored pod, under the same waits.
  t.equal(
    await handler.program({
      ...stored,
      pod: "shop/late",
      port: "late.shop",
      uid: "uid-late",
      ips: ["10.16.0.3"],
      mac: "0a:58:0a:10:00:03",
    }),
    "written",
  );
  await t.rejects(
    handler.program({
      ...stored,
      pod: "shop/dup",
      port: "dup.shop",
      uid: "uid-dup",
      ips: ["10.16.0.3"],
      mac: "0a:58:0a:10:00:09",
    }),
    {
      name: "IntentRefused",
      message: /pod shop\/dup: 10\.16\.0\.3 was just taken in subnet ovn-default by pod shop\/late/,
    },
  );

  // A claim nobody stores, and a port whose pod is gone: released after the grace, not before.
  await handler.claim(claimFor("forged"));
  const young = await handler.reconcile([stored], 60_000);
  t.same(young.claimsReleased, [], "young claims stay");
  const later = await handler.reconcile([stored], 0);
  t.same(later.claimsReleased, ["shop/forged"]);
  t.same(later.released, ["shop/late"], "the late pod is not stored any more here");
  t.same(await portsOn(nb, "ovn-default"), ["web.shop enabled 0a:58:0a:10:00:02 10.16.0.2"]);
  t.equal(await handler.release("shop/web"), "released");
  t.equal(await nbctl(nb, "--bare", "--columns=name", "find", "Logical_Switch_Port"), "", "no port left");
});

t.test("pods racing through two clients never share an address; each takes the next free one", async (t) => {
  const { nb } = await setup(t);
  const [a, b] = [await handlerOn(t, nb), await handlerOn(t, nb)];
  const claims = Array.from({ length: 60 }, (_, i) => claimFor(`p${i}`, { cidrs: ["10.16.0.0/24"] }));
  const results = await Promise.all(claims.map((c, i) => ((i % 2 ? a : b) as PortHandler).claim(c)));
  const ips = results.map((r) => r.annotations?.["ovn.kubernetes.io/ip_address"]);
  t.equal(new Set(ips).size, 60, "60 distinct addresses");
  t.equal((await portsOn(nb, CLAIMS_SWITCH)).length, 60, "60 ports");
});

t.test(
  "an address is held by its port's UUID, the same on every replica: one lookup, at any switch size",
  async (t) => {
    const { nb, handler } = await setup(t);
    const single = await handler.claim(claimFor("v4"));
    const dual = await handler.claim(
      claimFor("dual", {
        // The v6 CIDR first: the UUID still comes from the v4 address.
        cidrs: ["fd00:10:16::/125", "10.16.0.0/29"],
        gateways: ["fd00:10:16::1", "10.16.0.1"],
      }),
    );
    const ip = (r: typeof single) => r.annotations?.["ovn.kubernetes.io/ip_address"] ?? "";
    t.equal(ip(dual).split(",").length, 2, "the dual-stack pod got an address per family");
    for (const [port, first] of [
      ["v4.shop", ip(single)],
      ["dual.shop", ip(dual).split(",")[1] ?? ""],
    ] as const)
      t.equal(
        await nbctl(nb, "get", "Logical_Switch_Port", port, "_uuid"),
        claimUuid(`ovn-default|${first}`),
        `${port}'s UUID is its IPv4 address's claim UUID`,
      );
    // Another replica asked for the same address: refused, naming the holder (test/ports-race.test.ts races them).
    const other = await handlerOn(t, nb);
    await t.rejects(
      other.claim(claimFor("late", { ips: [ip(single)] })),
      { message: new RegExp(`${ip(single).replaceAll(".", "\\.")} is already held by pod shop/v4`) },
      "the same address asked for again is refused",
    );
  },
);

t.test("a pod's EIP is claimed in its port's transaction: both or neither", async (t) => {
  const nb = await northboundFor(t);
  await nbctl(nb, "ls-add", "ovn-default");
  await nbctl(nb, "lr-add", "ovn-cluster");
  const client = await northboundClientFor(t, nb.unixRemote);
  const nat = new NatHandler(client, "ovn-cluster", log);
  await nat.ensureClaimsRouter();
  const handler = new PortHandler(client, log, nat);
  await handler.start();
  const transactions: number[] = [];
  client.on("transaction", ({ operations }) => transactions.push(operations));
  const holds = { type: "dnat_and_snat" as const, external_ip: "172.56.0.233" };
  await handler.claim(claimFor("a", { nat: { pod: "shop/a", uid: "uid-a", holds } }));
  t.same(await portsOn(nb, CLAIMS_SWITCH), ["a.shop disabled 0a:58:0a:10:00:02 10.16.0.2"]);
  t.match(await nbctl(nb, "lr-nat-list", "ovn-admission-claims"), /dnat_and_snat\s+172\.56\.0\.233/);
  t.equal(transactions.filter((n) => n > 3).length, 1, "one write transaction for the port and the EIP");
  t.equal(await nat.claim({ pod: "shop/a", uid: "uid-a", holds }), "held", "validation then finds it held");

  await t.rejects(handler.claim(claimFor("b", { nat: { pod: "shop/b", uid: "uid-b", holds } })), {
    name: "IntentRefused",
    message: /172\.56\.0\.233 cannot be this pod's EIP: it is already the EIP of pod shop\/a/,
  });
  t.same(
    await portsOn(nb, CLAIMS_SWITCH),
    ["a.shop disabled 0a:58:0a:10:00:02 10.16.0.2"],
    "and b got no port either",
  );
});
