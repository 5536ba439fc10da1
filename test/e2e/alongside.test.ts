/**
 * Beside Kube-OVN (`--alongside kube-ovn`), against a Northbound laid out the
 * way kube-ovn-controller lays it out (written here with ovn-nbctl as it
 * would: `ovn-cluster` and `join`, `ovn-default` with `vendor=kube-ovn`, a
 * pod's port `<pod>.<namespace>` and its NAT row), behind a real
 * kube-apiserver with the controller-manager and scheduler: the service
 * decides, injects and claims, and not one of Kube-OVN's rows is touched or
 * doubled; EIP conflicts are still refused naming the holder, across three
 * replicas too. With the profile the database contradicts, it does not start.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import t from "tap";
import { AppsV1Api, CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { op, OvsdbClient, type Row } from "ovsdb-client";
import { kubeFor, readyNodes } from "../harness/kube.js";
import { northboundFor, nodesFor, vsctl, type OvsdbServer } from "../harness/index.js";
import { responseOf, serviceFor } from "../harness/service.js";
import { waitFor } from "../harness/wait.js";
import { podReview, SEED_GATEWAY, STORAGE_SUBNET } from "../fixtures/index.js";
import { OWNER_KEY } from "../../ovn/rows.js";
import { ClusterState } from "../../cluster/state.js";

const NB = "OVN_Northbound";
// A kube-apiserver with its controller-manager and scheduler, 20 pods and three replicas: over the suite's
// 120 s per file when the scheduler retries a pod a minute later (as it sometimes does under load).
t.setTimeout(240_000);
const nbctl = (nb: OvsdbServer, ...args: string[]) =>
  promisify(execFile)("ovn-nbctl", [`--db=${nb.unixRemote}`, ...args]);

/** What kube-ovn-controller writes for the default VPC, and for one pod it addressed before we came. */
async function kubeOvnLayout(nb: OvsdbServer): Promise<void> {
  const vendor = "external_ids:vendor=kube-ovn";
  const routerPort = (ls: string, lrp: string, mac: string, network: string) => [
    ["lrp-add", "ovn-cluster", lrp, mac, network],
    ["set", "Logical_Router_Port", lrp, vendor],
    ["lsp-add", ls, `${ls}-ovn-cluster`],
    ["lsp-set-type", `${ls}-ovn-cluster`, "router"],
    ["lsp-set-addresses", `${ls}-ovn-cluster`, "router"],
    ["lsp-set-options", `${ls}-ovn-cluster`, `router-port=${lrp}`],
    ["set", "Logical_Switch_Port", `${ls}-ovn-cluster`, vendor],
  ];
  const steps = [
    ["lr-add", "ovn-cluster"],
    ["set", "Logical_Router", "ovn-cluster", vendor],
    ["ls-add", "join"],
    ["set", "Logical_Switch", "join", vendor, "other_config:subnet=100.64.0.0/16"],
    ["ls-add", "ovn-default"],
    [
      "set",
      "Logical_Switch",
      "ovn-default",
      vendor,
      "other_config:subnet=10.16.0.0/16",
      "other_config:gateway=10.16.0.1",
    ],
    ...routerPort("ovn-default", "ovn-cluster-ovn-default", "0a:58:0a:10:00:01", "10.16.0.1/16"),
    ...routerPort("join", "ovn-cluster-join", "0a:58:64:40:00:01", "100.64.0.1/16"),
    ["lsp-add", "ovn-default", "old.shop"],
    ["lsp-set-addresses", "old.shop", "0a:58:0a:10:00:05 10.16.0.5"],
    [
      "set",
      "Logical_Switch_Port",
      "old.shop",
      vendor,
      "external_ids:pod=shop/old",
      "external_ids:ls=ovn-default",
    ],
    ["lr-nat-add", "ovn-cluster", "dnat_and_snat", "172.56.0.50", "10.16.0.5"],
  ];
  for (const step of steps) await nbctl(nb, ...step);
}

const TABLES = [
  "Logical_Router",
  "Logical_Switch",
  "Logical_Router_Port",
  "Logical_Switch_Port",
  "NAT",
  "Logical_Router_Static_Route",
  "Logical_Router_Policy",
  "Load_Balancer",
  "ACL",
  "Address_Set",
  "Port_Group",
  "DHCP_Options",
  "Gateway_Chassis",
];

/** Every row not ours, whole (its _version says whether anyone wrote it), by table; and how many of ours. */
async function rowsNotOurs(client: OvsdbClient): Promise<{ theirs: Record<string, string[]>; ours: number }> {
  const results = await client.transact(
    NB,
    TABLES.map((table) => op.select(table, [])),
  );
  const theirs: Record<string, string[]> = {};
  let ours = 0;
  results.forEach((result, i) => {
    const rows = (result?.rows ?? []) as Row[];
    const foreign = rows.filter((r) => !(r.external_ids as Record<string, string> | undefined)?.[OWNER_KEY]);
    ours += rows.length - foreign.length;
    theirs[TABLES[i] as string] = foreign.map((r) => JSON.stringify(r)).sort();
  });
  return { theirs, ours };
}

t.test("beside Kube-OVN: claims only, every Kube-OVN row untouched and none doubled", async (t) => {
  const nb = await northboundFor(t);
  await kubeOvnLayout(nb);
  const client = new OvsdbClient({ remote: nb.unixRemote, database: NB });
  t.teardown(() => client.close());
  await client.connect({ timeoutMs: 5_000 });
  const before = await rowsNotOurs(client);
  const started = Date.now();
  const at = (what: string) => t.comment(`${what} at ${Date.now() - started} ms`);
  t.ok(before.theirs.Logical_Switch_Port?.length, "Kube-OVN's layout is in place");

  const kube = await kubeFor(t, { controllers: true });
  const core = kube.kubeConfig.makeApiClient(CoreV1Api);
  // What the cluster held before the service came: the pod Kube-OVN addressed, its EIP, the gateway ConfigMap.
  await core.createNamespace({ body: { metadata: { name: "shop" } } });
  await core.createNamespacedPod({
    namespace: "shop",
    body: {
      metadata: {
        name: "old",
        annotations: {
          "ovn.kubernetes.io/allocated": "true",
          "ovn.kubernetes.io/logical_switch": "ovn-default",
          "ovn.kubernetes.io/ip_address": "10.16.0.5",
          "ovn.kubernetes.io/mac_address": "0a:58:0a:10:00:05",
          "ovn.kubernetes.io/eip": "172.56.0.50",
          "ovn.kubernetes.io/routed": "true",
        },
      },
      spec: { nodeName: "node-1", containers: [{ name: "c", image: "i" }] },
    },
  });
  await core.createNamespacedConfigMap({
    namespace: "kube-system",
    body: { metadata: { name: "ovn-external-gw-config" }, data: { ...SEED_GATEWAY } },
  });
  const [node] = await nodesFor(t, ["node-1"]);
  const s = await serviceFor(t, [
    "--kubeconfig",
    kube.kubeconfigFile,
    "--nb-remote",
    nb.unixRemote,
    "--alongside",
    "kube-ovn",
    "--lease-namespace",
    "default",
    "--reconcile-interval",
    "1",
    // Under the whole suite's load a binding's claim can take more than the default 2 s; a binding that fails
    // open is bound without an address (Kube-OVN, absent here, would allocate it itself).
    "--admission-deadline",
    "4",
    "--node-ovsdb-override",
    `node-1=${node?.ovs.unixRemote}`,
  ]);
  await kube.registerWebhooks(s.service.url, s.service.caFile as string);
  t.teardown(() => {
    if (t.passing()) return;
    for (const line of s.logs.filter((l) => Number(l.level) >= 40).slice(-15))
      t.comment(`service: ${JSON.stringify(line).slice(0, 300)}`);
  });
  at("service started");
  await kube.createSubnet("ovn-default", { cidrBlock: "10.16.0.0/16", gateway: "10.16.0.1", default: true });
  await waitFor("the view to hold the subnet", () => Boolean(s.service.view.subnet("ovn-default")));

  // A Deployment of 20, bound by the scheduler: each pod addressed asks Kube-OVN for a distinct address.
  await kube.kubeConfig.makeApiClient(AppsV1Api).createNamespacedDeployment({
    namespace: "shop",
    body: {
      metadata: { name: "web" },
      spec: {
        replicas: 20,
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { labels: { app: "web" } },
          spec: { containers: [{ name: "web", image: "i" }] },
        },
      },
    },
  });
  // The nodes come Ready after the pods exist: each node event puts the pending pods back in the scheduler's queue
  // (nodes made Ready just before could still be unknown to its cache, and a pod then waits a minute to be retried).
  await readyNodes(core, { "node-1": "192.168.1.1", "node-2": "192.168.1.2" });
  const planes = await core.readNode({ name: "node-1" });
  planes.metadata = {
    ...planes.metadata,
    annotations: {
      ...planes.metadata?.annotations,
      "ovn.kubernetes.io/node_networks": '{"storage":"10.10.10.1"}',
    },
  };
  await core.replaceNode({ name: "node-1", body: planes });
  await waitFor(
    "the view to hold node-1's plane",
    () => s.service.view.nodesWithPlane("storage").length === 1,
  );
  await kube.createSubnet("storage-net", STORAGE_SUBNET);
  await waitFor("the view to hold the subnets", () => Boolean(s.service.view.subnet("storage-net")));
  // Each pod is addressed at its binding; a binding that comes before the view has the pod is answered
  // without an address, and beside Kube-OVN that pod is left to Kube-OVN's own allocation (absent here).
  const bound = await waitFor(
    "20 pods bound",
    async () => {
      const items = (await core.listNamespacedPod({ namespace: "shop", labelSelector: "app=web" })).items;
      return items.filter((p) => p.spec?.nodeName).length === 20 ? items : undefined;
    },
    90_000,
    250,
  );
  at("20 pods bound");
  const web = bound.filter((p) => p.metadata?.annotations?.["ovn.kubernetes.io/ip_address"]);
  t.ok(web.length > 0, `${web.length} of 20 addressed at their binding`);
  t.same(
    bound
      .filter((p) => !web.includes(p))
      .flatMap((p) =>
        Object.keys(p.metadata?.annotations ?? {}).filter((k) => k.startsWith("ovn.kubernetes.io/")),
      ),
    [],
    "the others carry nothing of ours, half-written or otherwise",
  );
  const a = (p: V1Pod) => p.metadata?.annotations ?? {};
  const ips = web.map((p) => a(p)["ovn.kubernetes.io/ip_address"]);
  t.equal(new Set(ips).size, web.length, "distinct addresses");
  t.notOk(ips.includes("10.16.0.5"), "none of them the address Kube-OVN gave the pod before us");
  t.same(
    [
      ...new Set(
        web.map((p) =>
          Object.keys(a(p))
            .filter((k) => k.startsWith("ovn.kubernetes.io/"))
            .sort()
            .join(","),
        ),
      ),
    ],
    ["ovn.kubernetes.io/ip_address,ovn.kubernetes.io/logical_switch,ovn.kubernetes.io/mac_address"],
    "each pod asks Kube-OVN for its address (its static-IP annotations); Kube-OVN allocates and marks it",
  );

  // EIPs: Kube-OVN's row holds 172.56.0.50; a claim of ours holds a new one.
  const eipPod = (name: string, eip: string) =>
    `apiVersion: v1\nkind: Pod\nmetadata: { name: ${name}, namespace: shop, annotations: { ovn.kubernetes.io/eip: "${eip}" } }\nspec: { nodeName: node-2, containers: [{ name: c, image: i }] }`;
  await t.rejects(
    kube.kubectl(["apply", "-f", "-"], eipPod("thief", "172.56.0.50")),
    /172\.56\.0\.50/,
    "an EIP Kube-OVN's NAT row holds is refused",
  );
  t.match(
    await kube.kubectl(["apply", "-f", "-"], eipPod("first", "172.56.0.60")),
    /created/,
    "a free EIP is admitted",
  );
  await t.rejects(
    kube.kubectl(["apply", "-f", "-"], eipPod("second", "172.56.0.60")),
    /shop\/first/,
    "the same EIP again is refused naming its holder",
  );
  await kube.kubectl(
    ["apply", "-f", "-"],
    `apiVersion: v1\nkind: Pod\nmetadata: { name: batch, namespace: shop, annotations: { ovn.kubernetes.io/snat: "172.56.0.70" } }\nspec: { nodeName: node-2, containers: [{ name: c, image: i }] }`,
  );
  await core.createNamespace({ body: { metadata: { name: "storage" } } });
  const plane = await core.createNamespacedPod({
    namespace: "storage",
    body: { metadata: { name: "s1" }, spec: { nodeName: "node-1", containers: [{ name: "c", image: "i" }] } },
  });
  t.equal(
    plane.metadata?.annotations?.["ovn-admission.io/encap-ip"],
    "10.10.10.1",
    "a plane pod records its encap IP",
  );

  at("pods admitted");
  // Let every reconcile and programming pass run, then compare.
  await new Promise((r) => setTimeout(r, 3_000));
  await s.service.reconcile();
  const after = await rowsNotOurs(client);
  for (const table of TABLES)
    t.same(
      after.theirs[table],
      before.theirs[table],
      `${table}: every Kube-OVN row byte-identical, none added`,
    );
  t.ok(after.ours > web.length, `our claims are on our own router and switch (${after.ours} rows of ours)`);
  t.equal(
    await vsctl(
      node as NonNullable<typeof node>,
      "--if-exists",
      "get",
      "Open_vSwitch",
      ".",
      "external_ids:ovn-encap-ip",
    ),
    "",
    "node encap IPs are left to kube-ovn-daemon",
  );
});

t.test(
  "three replicas beside Kube-OVN racing for one EIP: one wins, two are told who holds it",
  async (t) => {
    const nb = await northboundFor(t);
    await kubeOvnLayout(nb);
    const view = () =>
      ClusterState.of({
        ConfigMap: [
          {
            metadata: { name: "ovn-external-gw-config", namespace: "kube-system" },
            data: { ...SEED_GATEWAY },
          },
        ],
        Pod: [],
      });
    const replicas = await Promise.all(
      [0, 1, 2].map(() =>
        serviceFor(t, ["--nb-remote", nb.tcpRemote, "--alongside", "kube-ovn"], { view: view() }),
      ),
    );
    const answers = await Promise.all(
      replicas.map(async (replica, i) => {
        const review = podReview((r) => {
          r.request.uid = `race-${i}`;
          r.request.name = `racer-${i}`;
          r.request.object.metadata.name = `racer-${i}`;
          r.request.object.metadata.annotations = { "ovn.kubernetes.io/eip": "172.56.0.99" };
        });
        const response = responseOf(await replica.review("/validate", review));
        return {
          allowed: response.allowed,
          message: (response.status as { message?: string })?.message ?? "",
        };
      }),
    );
    t.equal(answers.filter((a) => a.allowed).length, 1, "one replica's pod holds the EIP");
    for (const refused of answers.filter((a) => !a.allowed))
      t.match(refused.message, /172\.56\.0\.99.*racer-\d/);
  },
);

t.test("a profile the Northbound contradicts does not start, naming the rows and the flag", async (t) => {
  const kubeOvn = await northboundFor(t);
  await kubeOvnLayout(kubeOvn);
  await t.rejects(
    serviceFor(t, ["--nb-remote", kubeOvn.unixRemote]),
    /holds Kube-OVN's rows \(external_ids:vendor=kube-ovn: logical router ovn-cluster, logical switch join, logical switch ovn-default\).*--alongside kube-ovn/,
    "Kube-OVN's rows and no --alongside",
  );
  const plain = await northboundFor(t);
  await t.rejects(
    serviceFor(t, ["--nb-remote", plain.unixRemote, "--alongside", "kube-ovn"]),
    /--alongside kube-ovn, but OVN Northbound at .* has no router or switch with external_ids:vendor=kube-ovn/,
    "--alongside and no Kube-OVN",
  );
  const check = new OvsdbClient({ remote: plain.unixRemote, database: NB });
  t.teardown(() => check.close());
  await check.connect({ timeoutMs: 5_000 });
  const [routers, switches] = await check.transact(NB, [
    op.select("Logical_Router", [], ["name"]),
    op.select("Logical_Switch", [], ["name"]),
  ]);
  t.same(
    [routers?.rows, switches?.rows],
    [[], []],
    "nothing was written before refusing (not even the claims router)",
  );
});
