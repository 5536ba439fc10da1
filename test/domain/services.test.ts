/** Services as load balancer plans, from plain stored objects (discovery v1, v1beta1 and core Endpoints). */
import t from "tap";
import { ClusterState } from "../../cluster/state.js";
import { trim } from "../../domain/facts.js";
import type { KubeObject } from "../../domain/kube.js";
import { balancedService, loadBalancersOf, serviceLoadBalancers } from "../../domain/services.js";

const service = (spec: Record<string, unknown>, name = "web"): KubeObject => ({
  metadata: { name, namespace: "shop", uid: `uid-${name}`, resourceVersion: "7" },
  spec: {
    clusterIP: "10.96.0.10",
    ports: [{ name: "http", protocol: "TCP", port: 80, targetPort: 8080 }],
    ...spec,
  },
});

const slice = (
  endpoints: Array<{ ip: string; ready?: boolean }>,
  ports = [{ name: "http", protocol: "TCP", port: 8080 }],
  name = "web-abcde",
): KubeObject => ({
  metadata: { name, namespace: "shop", labels: { "kubernetes.io/service-name": "web" } },
  addressType: "IPv4",
  endpoints: endpoints.map((e) => ({
    addresses: [e.ip],
    ...(e.ready === undefined ? {} : { conditions: { ready: e.ready } }),
  })),
  ports,
});

t.test(
  "a ClusterIP Service: one load balancer per protocol, ready endpoints at their target ports",
  async (t) => {
    const plans = loadBalancersOf(trim.Service(service({})), [
      trim.EndpointSlice(
        slice([
          { ip: "192.168.1.5", ready: true },
          { ip: "192.168.0.4" },
          { ip: "192.168.2.9", ready: false },
        ]),
      ),
    ]);
    t.same(plans, [
      {
        name: "Service_shop/web_TCP",
        service: "shop/web",
        protocol: "tcp",
        vips: { "10.96.0.10:80": "192.168.0.4:8080,192.168.1.5:8080" },
        options: {},
      },
    ]);
  },
);

t.test(
  "ports match by name and protocol; UDP gets its own load balancer; affinity is the timeout",
  async (t) => {
    const plans = loadBalancersOf(
      trim.Service(
        service({
          ports: [
            { name: "dns", protocol: "UDP", port: 53, targetPort: 5353 },
            { name: "dns-tcp", protocol: "TCP", port: 53, targetPort: "dns-tcp" },
          ],
          sessionAffinity: "ClientIP",
          sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
        }),
      ),
      [
        trim.EndpointSlice(
          slice(
            [{ ip: "192.168.0.4" }],
            [
              { name: "dns", protocol: "UDP", port: 5353 },
              { name: "dns-tcp", protocol: "TCP", port: 5354 },
            ],
          ),
        ),
      ],
    );
    t.same(
      plans.map((p) => [p.name, p.vips, p.options]),
      [
        ["Service_shop/web_UDP", { "10.96.0.10:53": "192.168.0.4:5353" }, { affinity_timeout: "60" }],
        ["Service_shop/web_TCP", { "10.96.0.10:53": "192.168.0.4:5354" }, { affinity_timeout: "60" }],
      ],
    );
  },
);

t.test(
  "headless and ExternalName Services get none; no ready endpoint is a VIP without backends",
  async (t) => {
    t.notOk(balancedService(trim.Service(service({ clusterIP: "None" }))));
    t.notOk(balancedService(trim.Service(service({ type: "ExternalName", clusterIP: "" }))));
    t.same(loadBalancersOf(trim.Service(service({ clusterIP: "None" })), []), []);
    t.same(loadBalancersOf(trim.Service(service({})), [])[0]?.vips, { "10.96.0.10:80": "" });
  },
);

t.test("dual stack: each VIP family gets the backends of its family", async (t) => {
  const [plan] = loadBalancersOf(trim.Service(service({ clusterIPs: ["10.96.0.10", "fd00:10:96::a"] })), [
    trim.EndpointSlice(slice([{ ip: "192.168.0.4" }, { ip: "fd00:192:168::4" }])),
  ]);
  t.same(plan?.vips, {
    "10.96.0.10:80": "192.168.0.4:8080",
    "[fd00:10:96::a]:80": "[fd00:192:168::4]:8080",
  });
});

t.test("the view answers from EndpointSlices where they are listed, else from Endpoints", async (t) => {
  const endpoints: KubeObject = {
    metadata: { name: "web", namespace: "shop" },
    subsets: [
      {
        addresses: [{ ip: "192.168.0.4" }],
        notReadyAddresses: [{ ip: "192.168.0.5" }],
        ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      },
    ],
  };
  const withEndpoints = ClusterState.of({ Service: [service({})], Endpoints: [endpoints] });
  t.same(serviceLoadBalancers(withEndpoints, "shop/web").plans[0]?.vips, {
    "10.96.0.10:80": "192.168.0.4:8080",
  });
  const withSlices = ClusterState.of({
    Service: [service({})],
    EndpointSlice: [slice([{ ip: "192.168.1.1" }])],
    Endpoints: [endpoints],
  });
  t.same(serviceLoadBalancers(withSlices, "shop/web").plans[0]?.vips, {
    "10.96.0.10:80": "192.168.1.1:8080",
  });
  t.same(serviceLoadBalancers(withSlices, "shop/gone"), {
    stored: { service: "shop/gone", uid: "", resourceVersion: "" },
    plans: [],
  });
});

t.test("a NodePort is a VIP on each gateway node's physical IP; a ClusterIP Service's is not", async (t) => {
  const nodePort = (type: string) =>
    trim.Service(
      service({
        type,
        ports: [{ name: "http", protocol: "TCP", port: 80, targetPort: 8080, nodePort: 30080 }],
      }),
    );
  const slices = [trim.EndpointSlice(slice([{ ip: "192.168.0.4" }]))];
  t.same(loadBalancersOf(nodePort("NodePort"), slices, ["10.33.74.138"])[0]?.vips, {
    "10.96.0.10:80": "192.168.0.4:8080",
    "10.33.74.138:30080": "192.168.0.4:8080",
  });
  t.same(Object.keys(loadBalancersOf(nodePort("ClusterIP"), slices, ["10.33.74.138"])[0]?.vips ?? {}), [
    "10.96.0.10:80",
  ]);
});
