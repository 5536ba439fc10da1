/**
 * A cluster whose network is real down to the packet: a kube-apiserver, the
 * service with its webhooks registered, and the data-plane harness's nodes
 * (ovn-northd, and per node ovn-controller and ovs-vswitchd) on the
 * service's Northbound, each node's database the one the service programs.
 */
import { CoreV1Api, type V1Node } from "@kubernetes/client-node";
import { waitFor } from "../harness/wait.js";

import type { Test } from "tap";
import { clusterRouterOn, startStandalone } from "../harness/index.js";
import {
  BOOKWORM,
  CONVERGE_MS,
  dataplaneFor,
  type Dataplane,
  type DataplaneNode,
  type OvnBuild,
} from "../harness/dataplane.js";
import { kubeFor, type KubeApi, type KubeOptions } from "../harness/kube.js";
import { serviceFor, type TestService } from "../harness/service.js";

export interface DataplaneCluster {
  dp: Dataplane;
  kube: KubeApi;
  core: CoreV1Api;
  s: TestService;
}

/**
 * `nodes` maps a node's name to its InternalIP. A node without planes gets
 * its encap IP from its node agent (kube-ovn-daemon, ovnkube-node), which is
 * not the service: the harness writes what the agent would, unless told not
 * to (nodes whose planes the service programs). `build` is the OVN release the
 * nodes, ovn-northd and the Northbound's schema come from.
 */
export async function dataplaneCluster(
  t: Test,
  nodes: Record<string, string>,
  serviceArgs: string[],
  options: { build?: OvnBuild; agentEncapIp?: boolean; kube?: KubeOptions } = {},
): Promise<DataplaneCluster> {
  const build = options.build ?? BOOKWORM;
  // The Northbound carries the schema of the OVN it is tested with.
  const nb = await startStandalone(build.schemas.northbound, { name: "nb" });
  t.teardown(() => nb.stop());
  await clusterRouterOn(t, nb.unixRemote);
  const dp = await dataplaneFor(t, nb, Object.keys(nodes), build);
  if (options.agentEncapIp !== false)
    for (const node of dp.nodes)
      await dp.vsctl(node, "set", "Open_vSwitch", ".", `external_ids:ovn-encap-ip=${nodes[node.name]}`);
  const kube = await kubeFor(t, options.kube);
  const s = await serviceFor(t, [
    "--kubeconfig",
    kube.kubeconfigFile,
    "--nb-remote",
    nb.unixRemote,
    "--lease-namespace",
    "default",
    "--node-ovsdb-override",
    dp.nodes.map((n) => `${n.name}=${n.ovs.unixRemote}`).join(";"),
    ...serviceArgs,
  ]);
  await kube.registerWebhooks(s.service.url, s.service.caFile as string);
  // A failed packet test says what the service did: its warnings, and every encap and interface event.
  t.teardown(() => {
    if (t.passing()) return;
    for (const line of s.logs)
      if (Number(line.level) >= 40 || /encap|interface|lease|leader|ovsdb|program/.test(String(line.event)))
        t.comment(`service: ${JSON.stringify(line).slice(0, 400)}`);
  });
  return { dp, kube, core: kube.kubeConfig.makeApiClient(CoreV1Api), s };
}

/** Registers each node as a kubelet does (its InternalIP), once the node webhook answers; the created Nodes. */
export async function registerNodes(
  core: CoreV1Api,
  nodes: Record<string, string>,
  annotations: Record<string, Record<string, string>> = {},
): Promise<V1Node[]> {
  const created: V1Node[] = [];
  for (const [name, address] of Object.entries(nodes))
    created.push(
      await waitFor(`node ${name} registered`, () =>
        core
          .createNode({
            body: {
              metadata: { name, annotations: annotations[name] ?? {} },
              status: { addresses: [{ type: "InternalIP", address }] },
            },
          })
          .catch(() => undefined),
      ),
    );
  return created;
}

/** ovn-trace's microflow of an IPv4 packet from one port to an address, with the given destination MAC. */
export const ipv4Flow = (
  inport: string,
  from: { ip: string; mac: string },
  to: { ip: string },
  dstMac: string,
): string =>
  `inport == "${inport}" && eth.src == ${from.mac} && eth.dst == ${dstMac} && ip4.src == ${from.ip} && ip4.dst == ${to.ip} && ip.ttl == 64`;

/** ofproto/trace's flow of the same packet entering br-int on `iface`. */
export const ipv4Packet = (
  iface: string,
  from: { ip: string; mac: string },
  to: { ip: string },
  dstMac: string,
): string =>
  `in_port=${iface},dl_src=${from.mac},dl_dst=${dstMac},ip,nw_src=${from.ip},nw_dst=${to.ip},nw_ttl=64`;

/** Waits until each pod interface (on its node) carries its `external_ids:encap-ip`, as the service sets it. */
export async function interfacesCarryEncapIps(
  dp: Dataplane,
  wanted: ReadonlyArray<readonly [DataplaneNode, string, string]>,
): Promise<void> {
  for (const [node, iface, ip] of wanted)
    await waitFor(
      `${iface}'s interface encap-ip`,
      async () =>
        (await dp.vsctl(node, "--if-exists", "get", "Interface", iface, "external_ids:encap-ip")) ===
        `"${ip}"`,
      CONVERGE_MS,
    );
}

/**
 * A pod of seed 002's model created on `node` through the API server, plugged
 * as that CNI plugs it (iface-id `<namespace>_<pod>`, attached_mac, ip_address)
 * and bound on the node's chassis: its address and MAC, from its `ovn` annotation.
 */
export async function ovnKubernetesPod(
  core: CoreV1Api,
  dp: Dataplane,
  node: DataplaneNode,
  namespace: string,
  name: string,
  annotations: Record<string, string> = {},
): Promise<{ ip: string; mac: string }> {
  const pod = await core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name, annotations },
      spec: { nodeName: node.name, containers: [{ name: "c", image: "i" }] },
    },
  });
  const ovn = JSON.parse(pod.metadata?.annotations?.ovn ?? "{}") as {
    ip_address?: string;
    mac_address?: string;
  };
  const address = { ip: (ovn.ip_address ?? "").split("/")[0] as string, mac: ovn.mac_address ?? "" };
  await dp.plug(node, name, `${namespace}_${name}`, { attached_mac: address.mac, ip_address: address.ip });
  await dp.bound(`${namespace}_${name}`, node);
  return address;
}
