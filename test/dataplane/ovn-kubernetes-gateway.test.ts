/**
 * Seed 002's gateway-init by packets: a Node that declares itself a gateway
 * (`ovn-admission.io/gateway`, seed 002's --physical-interface, --physical-ip
 * and --default-gw) gets GR_<node> bound to its chassis, the join link, the
 * external switch with its localnet port, a default route and SNAT of the
 * cluster subnet: a pod's packet to an outside address leaves that gateway
 * with the node's physical IP. Declared wrong, the Node is refused with what
 * is wrong; forged, nothing is written; the annotation removed, exactly the
 * gateway's rows go.
 */
import t from "tap";
import { op } from "ovsdb-client";
import {
  BOOKWORM,
  trixieBuild,
  trixieRoot,
  type DataplaneNode,
  type OvnBuild,
} from "../harness/dataplane.js";
import { apiMessage } from "../harness/kube.js";
import { waitFor } from "../harness/wait.js";
import { dataplaneCluster, ipv4Flow, ovnKubernetesPod, registerNodes } from "./cluster.js";
import { forgedReview, OVN_KUBERNETES, SEED_GATEWAY } from "../fixtures/index.js";
import { responseOf } from "../harness/service.js";
import { addressOf, firstHostOf, macOfAddress } from "../../domain/addresses.js";

const NB = "OVN_Northbound";
const NODES = { "node-1": "192.0.2.11", "node-2": "192.0.2.12" };
const GATEWAY = "ovn-admission.io/gateway";
const DECLARED = {
  "physical-interface": "eth1",
  "physical-ip": "10.33.74.138/24",
  "default-gw": "10.33.74.253",
};
const OUTSIDE = "203.0.113.10";
const EIP = "172.56.0.233";

const root = trixieRoot();
const builds: OvnBuild[] = [BOOKWORM, ...(root ? [trixieBuild(root)] : [])];
if (!root)
  t.fail(
    "no Debian trixie root with OVN 25.03: scripts/setup.sh --for-tests lays it out (scripts/ovn-trixie.sh)",
  );

for (const build of builds)
  t.test(
    `OVN ${build.version}: a gateway node's router carries pods' packets out, SNAT'd to its physical IP`,
    async (t) => {
      const { dp, kube, core, s } = await dataplaneCluster(
        t,
        NODES,
        [...OVN_KUBERNETES, "--reconcile-interval", "2"],
        { build },
      );
      const nb = s.service.northbound;
      const [node1, node2] = dp.nodes as [DataplaneNode, DataplaneNode];

      // Declared wrong: refused, naming the key, what was expected and what was found.
      const wrong = await core
        .createNode({
          body: {
            metadata: {
              name: "node-3",
              annotations: { [GATEWAY]: JSON.stringify({ ...DECLARED, "default-gw": "10.99.0.1" }) },
            },
          },
        })
        .then(() => "created", apiMessage);
      t.match(
        wrong,
        /ovn-admission\.io\/gateway"\]: default-gw: 10\.99\.0\.1 is not in physical-ip's network 10\.33\.74\.0\/24/,
      );

      await registerNodes(core, NODES, { "node-2": { [GATEWAY]: JSON.stringify(DECLARED) } });
      const gatewayRows = async () => {
        const [routers, switches] = await nb.transact(NB, [
          op.select("Logical_Router", [["name", "==", "GR_node-2"]], ["options"]),
          op.select("Logical_Switch", [["name", "==", "ext_node-2"]], ["name"]),
        ]);
        return { routers: routers?.rows ?? [], switches: switches?.rows ?? [] };
      };
      const router = await waitFor("GR_node-2", async () => (await gatewayRows()).routers[0]);
      t.same(router.options, { chassis: node2.chassis }, "GR_node-2 is bound to node-2's chassis");
      await dp.bound("rtoe-GR_node-2", node2);
      t.pass("its external port is bound on node-2");

      // A pod on node-1 with no EIP or SNAT of its own.
      await core.createNamespace({ body: { metadata: { name: "shop" } } });
      const web = await ovnKubernetesPod(core, dp, node1, "shop", "web");
      // The outside gateway's MAC, as ovn-controller would learn it.
      const datapath = await dp.sbctl(
        "--bare",
        "--columns=_uuid",
        "find",
        "Datapath_Binding",
        "external_ids:name=GR_node-2",
      );
      await dp.sbctl(
        "create",
        "MAC_Binding",
        "logical_port=rtoe-GR_node-2",
        `ip=${DECLARED["default-gw"]}`,
        'mac="0a:00:00:00:02:53"',
        `datapath=${datapath}`,
      );
      const subnet = (await core.readNode({ name: "node-1" })).metadata?.annotations
        ?.ovn_host_subnet as string;
      const routerMac = macOfAddress(firstHostOf(subnet));
      /** The source address a pod's packet to an outside address leaves with, and the port it leaves on. */
      const leaving = async (port: string, from: { ip: string; mac: string }) => {
        const trace = await dp.ovnTrace("node-1", ipv4Flow(port, from, { ip: OUTSIDE }, routerMac));
        return /ct_snat\w*\(ip4\.src=([\d.]+)\)[\s\S]*output\("([^"]+)"\)/.exec(trace)?.slice(1) ?? trace;
      };
      const settled = (port: string, from: { ip: string; mac: string }, want: string[]) =>
        waitFor(`${port}'s packet to leave from ${want.join(" on ")}`, async () => {
          const left = await leaving(port, from);
          return JSON.stringify(left) === JSON.stringify(want) ? left : undefined;
        }).catch(() => leaving(port, from));
      t.same(
        await settled("shop_web", web, ["10.33.74.138", "breth1_node-2"]),
        ["10.33.74.138", "breth1_node-2"],
        "it leaves node-2's gateway router SNAT'd to node-2's physical IP, on the localnet port",
      );

      // Seed 003's external gateway beside it: a pod with its own EIP leaves with its EIP, not through GR_node-2.
      await core.createNamespacedConfigMap({
        namespace: "kube-system",
        body: {
          metadata: { name: "ovn-external-gw-config", namespace: "kube-system" },
          data: { ...SEED_GATEWAY, type: "distributed", "external-gw-nodes": "node-1" },
        },
      });
      await waitFor("the view to hold the external gateway", () => Boolean(s.service.view.gatewayConfig()));
      const api = await ovnKubernetesPod(core, dp, node1, "shop", "api", { "ovn.kubernetes.io/eip": EIP });
      const clusterRouter = await waitFor(
        "the cluster router's datapath",
        async () =>
          (await dp.sbctl(
            "--bare",
            "--columns=_uuid",
            "find",
            "Datapath_Binding",
            "external_ids:name=ovn_cluster_router",
          )) || undefined,
      );
      await dp.sbctl(
        "create",
        "MAC_Binding",
        "logical_port=ovn_cluster_router-external",
        `ip=${addressOf(SEED_GATEWAY["external-gw-addr"] as string)}`,
        'mac="0a:00:00:00:00:01"',
        `datapath=${clusterRouter}`,
      );
      t.same(
        await settled("shop_api", api, [EIP, "localnet.external"]),
        [EIP, "localnet.external"],
        "the EIP's pod leaves with its EIP through the external gateway",
      );
      t.same(
        await leaving("shop_web", web),
        ["10.33.74.138", "breth1_node-2"],
        "a pod without one still leaves through the gateway router",
      );

      // A NodePort on the gateway node's physical IP: from the external network to the pod behind it.
      await kube.kubectl(
        ["apply", "-f", "-"],
        `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: NodePort
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080}]
---
# What the endpoint slice controller writes (no kube-controller-manager runs in this test).
apiVersion: discovery.k8s.io/v1beta1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: ["${web.ip}"], conditions: {ready: true}}]
ports: [{name: http, port: 8080, protocol: TCP}]
`,
      );
      const fromOutside = { ip: "10.33.74.1", mac: "0a:00:00:00:02:01" };
      const toNodePort = `${ipv4Flow("breth1_node-2", fromOutside, { ip: "10.33.74.138" }, macOfAddress("10.33.74.138"))} && tcp && tcp.src == 40000 && tcp.dst == 30080`;
      if (build.version < "24.03") {
        const nodePort = await waitFor("the NodePort on GR_node-2", async () => {
          const lb = await dp.loadBalanced("ext_node-2", toNodePort);
          return lb.output === "shop_web" ? lb : undefined;
        });
        t.same(
          nodePort.backends,
          [`${web.ip}:8080`],
          "10.33.74.138:30080 is balanced to the Service's endpoint",
        );
        t.equal(nodePort.output, "shop_web", "a packet from outside to the NodePort reaches the pod");
      } else {
        // OVN 25.03's ovn-trace ends this packet at the bare ct_snat of GR_node-2's unsnat stage (the VIP
        // is also the SNAT's address) and outputs it nowhere, also on a gateway router made by hand with
        // ovn-nbctl (without the SNAT row it is delivered). What northd wrote for it is asserted instead:
        // the gateway router's flow that balances the NodePort to the endpoint.
        const flows = await waitFor("the NodePort's flow on GR_node-2", async () => {
          const text = await dp.sbctl("lflow-list", "GR_node-2");
          return text.includes(`ct_lb_mark(backends=${web.ip}:8080)`) ? text : undefined;
        });
        t.match(
          flows,
          new RegExp(
            `lr_in_dnat.*ip4\\.dst == 10\\.33\\.74\\.138 && tcp && tcp\\.dst == 30080.*ct_lb_mark\\(backends=${web.ip.replaceAll(".", "\\.")}:8080\\)`,
          ),
          "northd balances 10.33.74.138:30080 to the endpoint on GR_node-2",
        );
        t.comment(
          `OVN ${build.version}: ovn-trace delivers external to 10.33.74.138:30080 to: ${(await dp.outputs("ext_node-2", toNodePort, ["--minimal", "--ct=new"])).join(", ") || "(nowhere)"}`,
        );
      }

      // Forged: a review of a Node declaring a gateway that no API server sent writes nothing.
      const ghost = {
        metadata: {
          name: "ghost",
          annotations: { [GATEWAY]: JSON.stringify({ ...DECLARED, "physical-ip": "10.33.74.139/24" }) },
        },
      };
      for (const path of ["/mutate", "/validate"] as const)
        t.ok(
          responseOf(await s.review(path, forgedReview("Node", "nodes", "CREATE", ghost))),
          `forged ${path} answered`,
        );
      const ghostService = {
        metadata: { name: "ghost", namespace: "shop" },
        spec: { clusterIP: "10.0.0.99", ports: [{ name: "http", port: 80, targetPort: 8080 }] },
      };
      const ghostSlice = {
        metadata: { name: "ghost-1", namespace: "shop", labels: { "kubernetes.io/service-name": "web" } },
        addressType: "IPv4",
        endpoints: [{ addresses: ["192.0.2.200"] }],
        ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      };
      for (const path of ["/mutate", "/validate"] as const) {
        await s.review(path, forgedReview("Service", "services", "CREATE", ghostService, "shop"));
        await s.review(path, forgedReview("EndpointSlice", "endpointslices", "CREATE", ghostSlice, "shop"));
      }
      await s.service.reconcile();
      const [ghosts] = await nb.transact(NB, [
        op.select("Logical_Router", [["name", "==", "GR_ghost"]], ["name"]),
      ]);
      t.same(ghosts?.rows, [], "no gateway router for a Node no API server stored");
      const [balancers] = await nb.transact(NB, [op.select("Load_Balancer", [], ["name", "vips"])]);
      t.notMatch(
        JSON.stringify(balancers?.rows),
        /ghost|10\.0\.0\.99|192\.0\.2\.200/,
        "no load balancer or backend from a Service or EndpointSlice no API server stored",
      );

      // The declaration removed: exactly the gateway's rows go, and the packet no longer leaves.
      const stored = await core.readNode({ name: "node-2" });
      delete stored.metadata!.annotations![GATEWAY];
      await core.replaceNode({ name: "node-2", body: stored });
      await waitFor("GR_node-2 and ext_node-2 to go", async () => {
        const rows = await gatewayRows();
        return rows.routers.length === 0 && rows.switches.length === 0;
      });
      const [routes, joinPorts] = await nb.transact(NB, [
        op.select("Logical_Router_Static_Route", [["ip_prefix", "==", "0.0.0.0/0"]], ["nexthop"]),
        op.select("Logical_Switch_Port", [["name", "==", "jtor-GR_node-2"]], ["name"]),
      ]);
      t.same([routes?.rows, joinPorts?.rows], [[], []], "its default route and join port went with it");
      t.notMatch(
        await dp.ovnTrace(
          "node-1",
          ipv4Flow("shop_web", web, { ip: OUTSIDE }, macOfAddress(firstHostOf(subnet))),
        ),
        /breth1_node-2/,
      );
    },
  );
