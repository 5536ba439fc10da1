/**
 * The data-plane harness itself, on rows written with ovn-nbctl (as OVN's
 * own tests write them): two simulated nodes running the real ovn-northd,
 * ovs-vswitchd (dummy datapath) and ovn-controller; ports plugged as a CNI
 * plugs them bind to their nodes' chassis, ovn-trace delivers between them,
 * and ofproto/trace shows the tunnel to the peer's encap IP.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import t from "tap";
import { northboundFor } from "./harness/index.js";
import { CONVERGE_MS, dataplaneFor, dataplaneLogs } from "./harness/dataplane.js";
import { waitFor } from "./harness/wait.js";

const run = promisify(execFile);

t.test("two nodes: bound ports, a logical delivery, the tunnel to the peer", async (t) => {
  const nb = await northboundFor(t);
  const nbctl = (...args: string[]) => run("ovn-nbctl", [`--db=${nb.unixRemote}`, ...args]);
  const dp = await dataplaneFor(t, nb, ["node1", "node2"]);
  const [node1, node2] = dp.nodes as [(typeof dp.nodes)[0], (typeof dp.nodes)[0]];
  // What a node agent (or the service, for a node's planes) writes; only strings in a database here.
  for (const [node, ip] of [
    [node1, "192.0.2.11"],
    [node2, "192.0.2.12"],
  ] as const)
    await run("ovs-vsctl", [
      `--db=${node.ovs.unixRemote}`,
      "--no-wait",
      "set",
      "Open_vSwitch",
      ".",
      `external_ids:ovn-encap-ip=${ip}`,
    ]);
  await nbctl("ls-add", "sw0");
  await nbctl("lsp-add", "sw0", "p1", "--", "lsp-set-addresses", "p1", "0a:58:0a:00:00:01 10.0.0.1");
  await nbctl("lsp-add", "sw0", "p2", "--", "lsp-set-addresses", "p2", "0a:58:0a:00:00:02 10.0.0.2");
  await dp.plug(node1, "veth1", "p1");
  await dp.plug(node2, "veth2", "p2");
  try {
    await dp.bound("p1", node1);
    await dp.bound("p2", node2);
  } catch (err) {
    t.fail(`${(err as Error).message}\n${dataplaneLogs(node1)}`);
    return;
  }
  t.pass("each port is bound to its node's chassis");
  const microflow =
    'inport == "p1" && eth.src == 0a:58:0a:00:00:01 && eth.dst == 0a:58:0a:00:00:02 && ip4.src == 10.0.0.1 && ip4.dst == 10.0.0.2 && ip.ttl == 64';
  t.same(await dp.outputs("sw0", microflow), ["p2"], "ovn-trace: delivered to the other pod's port");
  const flow =
    "in_port=veth1,dl_src=0a:58:0a:00:00:01,dl_dst=0a:58:0a:00:00:02,ip,nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_ttl=64";
  const tunnel = await waitFor("node1's flows to node2", () => dp.tunnelOf(node1, flow), CONVERGE_MS).catch(
    () => undefined,
  );
  t.equal(
    tunnel?.remoteIp,
    "192.0.2.12",
    `ofproto/trace: leaves on the tunnel to node2 (${JSON.stringify(tunnel)})`,
  );
  const stranger = await dp.outputs(
    "sw0",
    'inport == "p1" && eth.src == 0a:58:0a:00:00:01 && eth.dst == 0a:58:0a:00:00:09 && ip4.src == 10.0.0.1 && ip4.dst == 10.0.0.9 && ip.ttl == 64',
  );
  t.same(stranger, [], "an address no port has is delivered nowhere");
});
