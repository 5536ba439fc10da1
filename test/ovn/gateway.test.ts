/** The gateway handler against a real OVN_Northbound and real node Open_vSwitch databases. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { pino } from "pino";
import t, { type Test } from "tap";
import { ClusterState } from "../../cluster/state.js";
import { NodeDatabases } from "../../ovn/encap.js";
import { GatewayHandler, type GatewaySettings } from "../../ovn/gateway.js";
import { IntentRefused } from "../../domain/intents.js";
import { readGatewayConfig, type GatewayConfig } from "../../domain/gateway-config.js";
import { SEED_GATEWAY } from "../fixtures/index.js";
import {
  clusterRouterOn,
  northboundFor,
  nodesFor,
  type OvsdbServer,
  type SimulatedNode,
} from "../harness/index.js";

const log = pino({ level: "silent" });
const SETTINGS: GatewaySettings = {
  router: "ovn-cluster",
  switchName: "external",
  network: "external",
  vlan: 0,
};

const nbctl = async (nb: OvsdbServer, ...args: string[]): Promise<string> =>
  (await promisify(execFile)("ovn-nbctl", [`--db=${nb.unixRemote}`, ...args])).stdout;

/**
 * `ovn-nbctl show` with UUIDs replaced and each switch's or router's ports in
 * name order (it prints them in UUID order), so that it can be compared.
 */
function shape(show: string): string {
  const text = show.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "<uuid>").trim();
  const blocks = text.split(/\n(?=\S)/);
  return blocks
    .map((block) => {
      const [head, ...ports] = block.split(/\n(?= {4}port )/);
      return [head, ...ports.sort()].join("\n");
    })
    .join("\n");
}

function configOf(data: Record<string, string>): GatewayConfig {
  const reading = readGatewayConfig(data);
  if (!reading.enabled || !reading.config) throw new Error(`bad test config: ${reading.problems.join("; ")}`);
  return reading.config;
}

async function setup(t: Test, nodeNames: string[], settings = SETTINGS) {
  const nb = await northboundFor(t);
  const nodes = await nodesFor(t, nodeNames);
  const northbound = await clusterRouterOn(t, nb.unixRemote);
  const overrides = Object.fromEntries(nodes.map((n) => [n.name, n.ovs.unixRemote]));
  const view = ClusterState.of({ Node: nodeNames.map((name) => ({ metadata: { name } })) });
  const databases = new NodeDatabases(
    { template: "tcp:{nodeIP}:6640", overrides, ssl: undefined },
    view,
    log,
  );
  const handler = new GatewayHandler(northbound, databases, view, settings, log);
  t.teardown(() => {
    databases.close();
  });
  return { nb, nodes: nodes as SimulatedNode[], northbound, handler };
}

t.test("the seed's ConfigMap programs exactly the rows the seed's `ovn-nbctl show` shows", async (t) => {
  const { nb, handler } = await setup(t, ["kube-ovn-worker"]);
  t.same(await handler.apply(configOf(SEED_GATEWAY)), []);
  t.equal(
    shape(await nbctl(nb, "show")),
    [
      // The seed's output, ports in name order.
      "switch <uuid> (external)",
      "    port external-ovn-cluster",
      "        type: router",
      "        router-port: ovn-cluster-external",
      "    port localnet.external",
      "        type: localnet",
      '        addresses: ["unknown"]',
      "router <uuid> (ovn-cluster)",
      "    port ovn-cluster-external",
      '        mac: "16:52:f3:13:6a:25"',
      '        networks: ["172.56.0.254/16"]',
      "        gateway chassis: [chassis-kube-ovn-worker]",
    ].join("\n"),
  );
  t.equal(
    (await nbctl(nb, "get", "Logical_Switch_Port", "localnet.external", "options:network_name")).trim(),
    "external",
  );
  t.equal(
    (
      await nbctl(
        nb,
        "--bare",
        "--columns=priority",
        "find",
        "Gateway_Chassis",
        "name=ovn-cluster-external-chassis-kube-ovn-worker",
      )
    ).trim(),
    "100",
  );
  const before = await nbctl(nb, "show");
  await handler.apply(configOf(SEED_GATEWAY));
  t.equal(await nbctl(nb, "show"), before, "applying again changes nothing, UUIDs included");
});

t.test("changes update in place; disabling removes exactly our rows", async (t) => {
  const { nb, handler, nodes } = await setup(t, ["gw-1", "gw-2", "gw-3"]);
  // Rows of others, on the same router and elsewhere, must survive everything below.
  await nbctl(nb, "ls-add", "ovn-default", "--", "lsp-add", "ovn-default", "pod-a.default");
  await nbctl(nb, "lrp-add", "ovn-cluster", "ovn-cluster-ovn-default", "0a:58:0a:10:00:01", "10.16.0.1/16");
  const theirs = shape(await nbctl(nb, "show"));

  await handler.apply(configOf({ ...SEED_GATEWAY, "external-gw-nodes": "gw-1,gw-2" }));
  const switchUuid = (await nbctl(nb, "get", "Logical_Switch", "external", "_uuid")).trim();
  await handler.apply(
    configOf({
      ...SEED_GATEWAY,
      "external-gw-nodes": "gw-3,gw-1",
      "nic-ip": "172.56.0.100/16",
      "nic-mac": "ac:1f:6b:2d:33:f1",
    }),
  );
  t.equal(
    (await nbctl(nb, "get", "Logical_Switch", "external", "_uuid")).trim(),
    switchUuid,
    "same switch row",
  );
  t.equal(
    (await nbctl(nb, "get", "Logical_Router_Port", "ovn-cluster-external", "networks")).trim(),
    '["172.56.0.100/16"]',
  );
  t.equal(
    (await nbctl(nb, "get", "Logical_Router_Port", "ovn-cluster-external", "mac")).trim(),
    '"ac:1f:6b:2d:33:f1"',
  );
  t.equal(
    (
      await nbctl(
        nb,
        "--format=csv",
        "--no-headings",
        "--columns=chassis_name,priority",
        "list",
        "Gateway_Chassis",
      )
    )
      .trim()
      .split("\n")
      .sort()
      .join(" "),
    "chassis-gw-1,99 chassis-gw-3,100",
    "gw-2 left, gw-3 came first",
  );

  await handler.apply(configOf({ ...SEED_GATEWAY, type: "distributed", "external-gw-nodes": "" }));
  t.equal(
    (await nbctl(nb, "--format=csv", "--no-headings", "--columns=chassis_name", "list", "Gateway_Chassis"))
      .trim()
      .split("\n").length,
    nodes.length,
    "distributed: every node is a gateway chassis",
  );

  t.equal(await handler.remove(), true);
  t.equal(shape(await nbctl(nb, "show")), theirs, "only what we made is gone");
  t.equal((await nbctl(nb, "list", "Gateway_Chassis")).trim(), "", "no gateway chassis left behind");
  t.equal(await handler.remove(), false, "nothing left to remove");
});

t.test("VLAN, network and names come from the flags", async (t) => {
  const { nb, handler } = await setup(t, ["kube-ovn-worker"], {
    router: "ovn-cluster",
    switchName: "ext",
    network: "physnet1",
    vlan: 205,
  });
  await handler.apply(configOf(SEED_GATEWAY));
  t.equal((await nbctl(nb, "get", "Logical_Switch_Port", "localnet.ext", "tag_request")).trim(), "205");
  t.equal(
    (await nbctl(nb, "get", "Logical_Switch_Port", "localnet.ext", "options:network_name")).trim(),
    "physnet1",
  );
  t.equal(
    (await nbctl(nb, "get", "Logical_Switch_Port", "ext-ovn-cluster", "options:router-port")).trim(),
    "ovn-cluster-ext",
  );
});

t.test("rows of the same name that are not ours are never taken over", async (t) => {
  const { nb, handler } = await setup(t, ["kube-ovn-worker"]);
  await nbctl(nb, "ls-add", "external");
  const err = await handler.apply(configOf(SEED_GATEWAY)).catch((e: unknown) => e);
  t.ok(err instanceof IntentRefused);
  t.match((err as Error).message, /already has a logical switch external that ovn-admission did not make/);
  t.equal((await nbctl(nb, "show")).includes("ovn-cluster-external"), false, "nothing was written");
  t.equal(await handler.remove(), false, "and theirs is not removed");
});

t.test("a gateway node that does not answer is left out; with none there is no gateway", async (t) => {
  const { nb, handler, nodes } = await setup(t, ["gw-1", "gw-2"]);
  await (nodes[1] as SimulatedNode).ovs.stop();
  const warnings = await handler.apply(configOf({ ...SEED_GATEWAY, "external-gw-nodes": "gw-1,gw-2" }));
  t.match(warnings, [/^gateway node gw-2: .*left out of the gateway chassis until it answers$/]);
  t.match(await nbctl(nb, "show"), /gateway chassis: \[chassis-gw-1\]/);
  await (nodes[0] as SimulatedNode).ovs.stop();
  await t.rejects(handler.apply(configOf({ ...SEED_GATEWAY, "external-gw-nodes": "gw-1,gw-2" })), {
    name: "GatewayError",
    message: /^no gateway chassis: gw-1: .*; gw-2: /,
  });
});

t.test("no cluster router: a clear error, nothing written", async (t) => {
  const { nb, handler } = await setup(t, ["kube-ovn-worker"], { ...SETTINGS, router: "missing-router" });
  await t.rejects(handler.apply(configOf(SEED_GATEWAY)), {
    name: "GatewayError",
    message:
      "logical router missing-router does not exist in OVN Northbound (made by the CNI; see --cluster-router)",
  });
  t.equal((await nbctl(nb, "ls-list")).trim(), "");
});

t.test("a gateway node whose database hangs is left out within the admission deadline", async (t) => {
  const { nb, handler, nodes } = await setup(t, ["gw-1", "gw-2"]);
  const hung = (nodes[1] as SimulatedNode).ovs;
  hung.freeze();
  t.teardown(() => hung.thaw());
  const started = Date.now();
  const warnings = await handler.apply(configOf({ ...SEED_GATEWAY, "external-gw-nodes": "gw-1,gw-2" }));
  const took = Date.now() - started;
  t.ok(took < 1_900, `answered in ${took} ms, inside the 2 s deadline`);
  t.match(warnings, [/^gateway node gw-2: /]);
  t.match(await nbctl(nb, "show"), /gateway chassis: \[chassis-gw-1\]/);
});
