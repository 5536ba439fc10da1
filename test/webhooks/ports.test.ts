/** Pods' address claims and the Subnet rules that guard them, as pure decisions. */
import t from "tap";
import { ClusterState } from "../../cluster/state.js";
import type { KubeObject } from "../../domain/kube.js";
import { mutatePod, mutatePodBinding, validatePod } from "../../webhooks/pods.js";
import { validateSubnet } from "../../webhooks/subnets.js";
import { admissionRequest, SEED_GATEWAY, settingsWith } from "../fixtures/index.js";

const settings = settingsWith();
const subnet = (name: string, spec: Record<string, unknown>): KubeObject => ({
  apiVersion: "kubeovn.io/v1",
  kind: "Subnet",
  metadata: { name, uid: `uid-${name}` },
  spec,
});
const view = () =>
  ClusterState.of({
    Subnet: [
      subnet("ovn-default", {
        cidrBlock: "10.16.0.0/16",
        gateway: "10.16.0.1",
        excludeIps: ["10.16.0.2..10.16.0.9"],
        default: true,
      }),
    ],
    Pod: [],
  });
const pod = (annotations: Record<string, string> = {}, nodeName?: string): KubeObject => ({
  metadata: { name: "web", namespace: "shop", uid: "pod-uid", annotations },
  spec: { containers: [{ name: "c", image: "i" }], ...(nodeName ? { nodeName } : {}) },
});
const create = (object: KubeObject) => admissionRequest("Pod", "pods", object);

t.test("a pod whose node is known claims its address; one without waits for its binding", async (t) => {
  const placed = mutatePod(create(pod({}, "node-1")), view(), settings);
  t.same(placed.intents, [
    {
      kind: "port-claim",
      owner: "shop/web",
      preview: true,
      spec: {
        pod: "shop/web",
        uid: "pod-uid",
        port: "web.shop",
        subnet: "ovn-default",
        cidrs: ["10.16.0.0/16"],
        gateways: ["10.16.0.1"],
        exclude: ["10.16.0.2..10.16.0.9"],
      },
    },
  ]);
  t.same(mutatePod(create(pod()), view(), settings).intents, [], "no node yet: nothing claimed");
  const allocated = pod(
    { "ovn.kubernetes.io/allocated": "true", "ovn.kubernetes.io/ip_address": "10.16.0.20" },
    "node-1",
  );
  t.same(mutatePod(create(allocated), view(), settings).intents, [], "an allocated address never changes");
  const asked = mutatePod(
    create(
      pod(
        {
          "ovn.kubernetes.io/ip_address": "10.16.0.20",
          "ovn.kubernetes.io/mac_address": "0a:58:0a:10:00:14",
          "ovn.kubernetes.io/ip_pool": "10.16.0.30,10.16.0.31",
        },
        "node-1",
      ),
    ),
    view(),
    settings,
  );
  t.match(asked.intents[0]?.spec, {
    ips: ["10.16.0.20"],
    mac: "0a:58:0a:10:00:14",
    pool: ["10.16.0.30", "10.16.0.31"],
  });
});

t.test(
  "asked-for addresses the subnet cannot give are refused, naming the field, the value and why",
  async (t) => {
    const cases: Array<[Record<string, string>, number, RegExp]> = [
      [
        { "ovn.kubernetes.io/ip_address": "10.17.0.5" },
        403,
        /ip_address"\]: 10\.17\.0\.5 is outside subnet ovn-default \(10\.16\.0\.0\/16\)/,
      ],
      [
        { "ovn.kubernetes.io/ip_address": "10.16.0.1" },
        403,
        /10\.16\.0\.1 is the gateway of subnet ovn-default/,
      ],
      [{ "ovn.kubernetes.io/ip_address": "10.16.0.0" }, 403, /10\.16\.0\.0 is the network address/],
      [{ "ovn.kubernetes.io/ip_address": "10.16.255.255" }, 403, /is the broadcast address/],
      [
        { "ovn.kubernetes.io/ip_address": "10.16.0.5" },
        403,
        /10\.16\.0\.5 is excluded from subnet ovn-default \(spec\.excludeIps\)/,
      ],
      [{ "ovn.kubernetes.io/ip_address": "ten" }, 400, /ip_address"\]: expected IP addresses, found "ten"/],
      [
        { "ovn.kubernetes.io/mac_address": "01:00:5e:00:00:01" },
        400,
        /mac_address"\]: expected a unicast MAC/,
      ],
      [{ "ovn.kubernetes.io/ip_pool": "10.16.0.30,x" }, 400, /ip_pool"\]: expected IP addresses, found "x"/],
    ];
    for (const [annotations, code, message] of cases) {
      const verdict = mutatePod(create(pod(annotations, "node-1")), view(), settings);
      t.match(verdict, { allowed: false, code, message }, JSON.stringify(annotations));
    }
  },
);

t.test("pods/binding claims the address of the pod the view holds, with its uid", async (t) => {
  const state = view();
  state.apply("Pod", "ADDED", pod({ "ovn.kubernetes.io/ip_address": "10.16.0.20" }));
  const binding = admissionRequest(
    "Binding",
    "pods",
    {
      metadata: { name: "web", namespace: "shop" },
      target: { apiVersion: "v1", kind: "Node", name: "node-1" },
    },
    { subResource: "binding" },
  );
  const verdict = mutatePodBinding(binding, state, settings);
  t.match(verdict.intents, [
    { kind: "port-claim", spec: { pod: "shop/web", uid: "pod-uid", ips: ["10.16.0.20"] } },
  ]);
});

t.test("an allocated pod's address annotations never change", async (t) => {
  const before = pod({
    "ovn.kubernetes.io/allocated": "true",
    "ovn.kubernetes.io/ip_address": "10.16.0.20",
    "ovn.kubernetes.io/logical_switch": "ovn-default",
  });
  const after = pod({
    "ovn.kubernetes.io/allocated": "true",
    "ovn.kubernetes.io/ip_address": "10.16.0.21",
    "ovn.kubernetes.io/logical_switch": "ovn-default",
  });
  const update = admissionRequest("Pod", "pods", after, { operation: "UPDATE", oldObject: before });
  t.match(validatePod(update, view(), settings), {
    allowed: false,
    code: 403,
    message:
      'metadata.annotations["ovn.kubernetes.io/ip_address"]: the pod\'s address is allocated and never changes (was "10.16.0.20", found "10.16.0.21"); delete the pod and create it again for another address',
  });
  const label = admissionRequest(
    "Pod",
    "pods",
    { ...before, metadata: { ...before.metadata, labels: { a: "b" } } },
    { operation: "UPDATE", oldObject: before },
  );
  t.equal(validatePod(label, view(), settings).allowed, true, "other edits pass");
});

t.test(
  "a Subnet with pods holding addresses is not deleted; typos of spec keys get did you mean",
  async (t) => {
    const state = view();
    for (let i = 0; i < 5; i++)
      state.apply("Pod", "ADDED", {
        metadata: {
          name: `p${i}`,
          namespace: "shop",
          annotations: {
            "ovn.kubernetes.io/allocated": "true",
            "ovn.kubernetes.io/logical_switch": "ovn-default",
          },
        },
      });
    const remove = (name: string) =>
      admissionRequest("Subnet", "subnets", subnet(name, {}), {
        group: "kubeovn.io",
        operation: "DELETE",
        object: null,
        oldObject: subnet(name, {}),
      });
    t.match(validateSubnet(remove("ovn-default"), state, settings), {
      allowed: false,
      message:
        "subnet ovn-default still has 5 pods with addresses in it (shop/p0, shop/p1, shop/p2 and 2 more); delete them first",
    });
    t.equal(validateSubnet(remove("empty"), state, settings).allowed, true, "an emptied subnet goes");
    const typo = admissionRequest("Subnet", "subnets", subnet("net1", { cidr: "10.66.0.0/16" }), {
      group: "kubeovn.io",
    });
    t.match(validateSubnet(typo, state, settings), {
      allowed: false,
      code: 400,
      message: 'spec.cidr: did you mean "cidrBlock"? a Subnet has no field "cidr", and cidrBlock is not set',
    });
    const unknown = admissionRequest(
      "Subnet",
      "subnets",
      subnet("net2", { cidrBlock: "10.67.0.0/16", colour: "blue" }),
      { group: "kubeovn.io" },
    );
    const verdict = validateSubnet(unknown, state, settings);
    t.equal(verdict.allowed, true);
    t.match(verdict.warnings, [/spec\.colour: not a Subnet field Kube-OVN knows; it is ignored/]);
  },
);

t.test(
  "a placed pod's EIP rides in its port claim; a bad one is denied before anything is held",
  async (t) => {
    const state = view();
    state.replace("ConfigMap", [
      { metadata: { name: "ovn-external-gw-config", namespace: "kube-system" }, data: { ...SEED_GATEWAY } },
    ]);
    const withEip = mutatePod(
      create(pod({ "ovn.kubernetes.io/eip": "172.56.0.233" }, "node-1")),
      state,
      settings,
    );
    t.match(withEip.intents, [
      {
        kind: "port-claim",
        spec: { nat: { pod: "shop/web", holds: { type: "dnat_and_snat", external_ip: "172.56.0.233" } } },
      },
    ]);
    const outside = mutatePod(
      create(pod({ "ovn.kubernetes.io/eip": "10.99.0.1" }, "node-1")),
      state,
      settings,
    );
    t.match(outside, { allowed: false, message: /ovn\.kubernetes\.io\/eip"\]: .*10\.99\.0\.1/ });
    t.same(
      mutatePod(create(pod({}, "node-1")), state, settings).intents[0]?.spec.nat,
      undefined,
      "no EIP, no NAT",
    );
  },
);
