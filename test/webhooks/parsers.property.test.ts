/**
 * Property tests of every parser a user's text reaches: arbitrary strings
 * and JSON values never throw or hang, every rejection names its field, and
 * what a writer produces reads back the same.
 */
import fc from "fast-check";
import t from "tap";
import { ClusterState } from "../../cluster/state.js";
import { annotationField, ANNOTATION, NAD_NODE_SELECTOR } from "../../domain/annotations.js";
import type { KubeObject } from "../../domain/kube.js";
import { parseNetworks, parseNodeSelector, type Attachment } from "../../domain/attachments.js";
import { validateConfigMap } from "../../webhooks/configmaps.js";
import { natWantOf } from "../../domain/nat.js";
import { readGatewayConfig } from "../../domain/gateway-config.js";
import { validateNad } from "../../webhooks/nads.js";
import { mutateNode, validateNode } from "../../webhooks/nodes.js";
import { mutatePod, validatePod } from "../../webhooks/pods.js";
import { readNodeNetworks } from "../../domain/planes.js";
import type { Verdict } from "../../webhooks/verdict.js";
import { admissionRequest, SEED_GATEWAY, settingsWith } from "../fixtures/index.js";

const settings = settingsWith();
const RUNS = { numRuns: 300 };

const request = (kind: string, group: string, resource: string, object: KubeObject, namespace = "") =>
  admissionRequest(kind, resource, object, { group, namespace });

/** Text a user might write: any string, JSON of any shape, and near-misses of the real forms. */
const userText = (...near: Array<fc.Arbitrary<string>>): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ unit: "grapheme", maxLength: 80 }),
    fc.string({ maxLength: 40 }),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    ...near,
  );

/** Rejections seen per test: a property that never met one would prove nothing. */
let rejected = 0;

/** A rejection names the field first: what the user must edit. */
function namesField(verdict: Verdict, field: string | RegExp): boolean {
  if (verdict.allowed) return true;
  rejected++;
  const message = verdict.message ?? "";
  return typeof field === "string" ? message.startsWith(field) : field.test(message);
}

const planeName = fc.stringMatching(/^[a-z]([-a-z0-9]{0,10}[a-z0-9])?$/);
const ipv4 = fc.ipV4();
const ipOrNot = fc.oneof(ipv4, fc.ipV6(), fc.string({ maxLength: 20 }), fc.integer().map(String));

t.test(
  "node_networks: never throws; rejections name the annotation; JSON of valid planes reads back",
  async (t) => {
    const nearNetworks = fc
      .dictionary(fc.oneof(planeName, fc.string({ maxLength: 12 })), ipOrNot, { maxKeys: 4 })
      .map((d) => JSON.stringify(d));
    fc.assert(
      fc.property(userText(nearNetworks), (text) => {
        const read = readNodeNetworks(text);
        const node: KubeObject = {
          metadata: { name: "n1", annotations: { [ANNOTATION.nodeNetworks]: text } },
        };
        const verdict = validateNode(request("Node", "", "nodes", node), ClusterState.of({}), settings);
        mutateNode(request("Node", "", "nodes", node));
        return (
          namesField(verdict, annotationField(ANNOTATION.nodeNetworks)) &&
          verdict.allowed === (read.problems.length === 0)
        );
      }),
      RUNS,
    );
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(planeName, ipv4), { selector: ([, ip]) => ip, maxLength: 5 }),
        (pairs) => {
          const planes = Object.fromEntries(pairs);
          const read = readNodeNetworks(JSON.stringify(planes));
          return read.problems.length === 0 && JSON.stringify(read.planes) === JSON.stringify(planes);
        },
      ),
      RUNS,
    );
    t.ok(rejected > 0, `held for every generated value; ${rejected} of them were rejections`);
    rejected = 0;
  },
);

t.test("tunnel_interface: never throws; rejections name the annotation", async (t) => {
  const nearTunnel = fc
    .array(fc.oneof(fc.stringMatching(/^[a-z0-9]{1,18}$/), fc.constantFrom("eth[", "(a+)+$", "bond.*", "")), {
      maxLength: 4,
    })
    .map((list) => list.join(","));
  fc.assert(
    fc.property(userText(nearTunnel), (text) => {
      const node: KubeObject = {
        metadata: { name: "n1", annotations: { [ANNOTATION.tunnelInterface]: text } },
      };
      const verdict = validateNode(request("Node", "", "nodes", node), ClusterState.of({}), settings);
      return namesField(verdict, new RegExp(`^${escape(annotationField(ANNOTATION.tunnelInterface))}`));
    }),
    RUNS,
  );
  t.ok(rejected > 0, `held for every generated value; ${rejected} of them were rejections`);
  rejected = 0;
});

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const objectName = fc.stringMatching(/^[a-z]([-a-z0-9]{0,12}[a-z0-9])?$/);
const interfaceName = fc.stringMatching(/^net[0-9]{1,3}$/);
const attachment: fc.Arbitrary<Attachment> = fc.record(
  { namespace: objectName, name: objectName, interface: interfaceName },
  { requiredKeys: ["namespace", "name"] },
);

t.test(
  "networks, both forms: never throws; rejections name the annotation; both writers read back",
  async (t) => {
    const nearJson = fc
      .array(
        fc.record(
          {
            name: fc.oneof(objectName, fc.string({ maxLength: 8 }), fc.integer() as fc.Arbitrary<unknown>),
            namespace: fc.oneof(objectName, fc.constant("")),
            interface: fc.oneof(interfaceName, fc.string({ maxLength: 20 })),
            ips: fc.array(ipOrNot, { maxLength: 2 }),
            mac: fc.oneof(fc.stringMatching(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/), fc.string({ maxLength: 20 })),
            "default-route": fc.array(ipOrNot, { maxLength: 1 }),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 3 },
      )
      .map((v) => JSON.stringify(v));
    const nearText = fc
      .array(
        fc.tuple(
          fc.option(objectName),
          fc.oneof(objectName, fc.string({ maxLength: 6 })),
          fc.option(interfaceName),
        ),
      )
      .map((entries) =>
        entries.map(([ns, name, i]) => `${ns ? `${ns}/` : ""}${name}${i ? `@${i}` : ""}`).join(","),
      );
    const view = ClusterState.of({ NetworkAttachmentDefinition: [], Pod: [] });
    fc.assert(
      fc.property(userText(nearJson, nearText), (text) => {
        parseNetworks(text, "shop");
        const pod: KubeObject = {
          metadata: { name: "p", namespace: "shop", annotations: { [ANNOTATION.networks]: text } },
          spec: { containers: [] },
        };
        const verdict = validatePod(request("Pod", "", "pods", pod, "shop"), view, settings);
        mutatePod(request("Pod", "", "pods", pod, "shop"), view, settings);
        return namesField(verdict, annotationField(ANNOTATION.networks));
      }),
      RUNS,
    );
    fc.assert(
      fc.property(fc.array(attachment, { maxLength: 4 }), (list) => {
        const text = list
          .map((a) => `${a.namespace}/${a.name}${a.interface ? `@${a.interface}` : ""}`)
          .join(",");
        const fromText = parseNetworks(text, "elsewhere");
        const fromJson = parseNetworks(JSON.stringify(list), "elsewhere");
        return (
          fromText.ok &&
          fromJson.ok &&
          JSON.stringify(fromText.value) === JSON.stringify(list) &&
          JSON.stringify(
            fromJson.value.map(({ namespace, name, interface: i }) => ({
              namespace,
              name,
              ...(i ? { interface: i } : {}),
            })),
          ) === JSON.stringify(list)
        );
      }),
      RUNS,
    );
    t.ok(rejected > 0, `held for every generated value; ${rejected} of them were rejections`);
    rejected = 0;
  },
);

const labelKey = fc.stringMatching(
  /^([a-z0-9]{1,8}\.)?[a-z0-9]{1,8}\/?[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?$/,
);
const labelValue = fc.stringMatching(/^([A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?)?$/);

t.test(
  "NAD nodeSelector and config: never throw; rejections name the field; key=value reads back",
  async (t) => {
    const nearSelector = fc
      .array(
        fc.tuple(
          fc.oneof(labelKey, fc.string({ maxLength: 8 })),
          fc.oneof(labelValue, fc.string({ maxLength: 8 })),
        ),
        {
          maxLength: 3,
        },
      )
      .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join(","));
    const nearConfig = fc
      .record(
        {
          cniVersion: fc.constant("0.3.1"),
          type: fc.oneof(
            fc.constantFrom("kube-ovn", "macvlan", "ipvlan", "bridge", "evil"),
            fc.string({ maxLength: 6 }),
          ),
          provider: fc.string({ maxLength: 20 }),
          server_socket: fc.constantFrom("/run/openvswitch/kube-ovn-daemon.sock", "relative.sock"),
          master: fc.oneof(interfaceName, fc.string({ maxLength: 20 })),
          mode: fc.string({ maxLength: 8 }),
          ipam: fc.record(
            {
              type: fc.constantFrom("whereabouts", "host-local", "static", "dhcp"),
              range: fc.string({ maxLength: 20 }),
            },
            { requiredKeys: [] },
          ),
          plugins: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 2 }),
        },
        { requiredKeys: [] },
      )
      .map((c) => JSON.stringify(c));
    const view = ClusterState.of({ NetworkAttachmentDefinition: [], Pod: [], Subnet: [] });
    fc.assert(
      fc.property(userText(nearSelector), userText(nearConfig), (selector, config) => {
        const nad: KubeObject = {
          metadata: { name: "net", namespace: "shop", annotations: { [NAD_NODE_SELECTOR]: selector } },
          spec: { config },
        };
        parseNodeSelector(selector);
        const verdict = validateNad(
          request(
            "NetworkAttachmentDefinition",
            "k8s.cni.cncf.io",
            "network-attachment-definitions",
            nad,
            "shop",
          ),
          view,
          settings,
        );
        return namesField(
          verdict,
          new RegExp(`^(${escape(annotationField(NAD_NODE_SELECTOR))}|spec\\.config)`),
        );
      }),
      RUNS,
    );
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(labelKey, labelValue), { selector: ([k]) => k, maxLength: 4, minLength: 1 }),
        (pairs) => {
          const read = parseNodeSelector(pairs.map(([k, v]) => `${k}=${v}`).join(","));
          return read.ok && JSON.stringify(read.value) === JSON.stringify(Object.fromEntries(pairs));
        },
      ),
      RUNS,
    );
    t.ok(rejected > 0, `held for every generated value; ${rejected} of them were rejections`);
    rejected = 0;
  },
);

t.test(
  "QoS rates, EIP/SNAT and address annotations: never throw; rejections name the annotation",
  async (t) => {
    const gateway = ClusterState.of({
      ConfigMap: [
        { metadata: { name: "ovn-external-gw-config", namespace: "kube-system" }, data: { ...SEED_GATEWAY } },
      ],
      Pod: [],
    });
    const key = fc.constantFrom(
      ANNOTATION.eip,
      ANNOTATION.snat,
      "ovn.kubernetes.io/ingress_rate",
      "ovn.kubernetes.io/egress_rate",
      "net1.shop.ovn.ovn.kubernetes.io/ingress_rate",
    );
    const value = userText(
      ipOrNot,
      fc.nat().map(String),
      fc.constantFrom("172.56.0.233", "172.56.0.1", "-1", "1e3"),
    );
    const addresses = fc.record({ ip: userText(ipOrNot), mac: userText(fc.constant("0A:58:0A:10:00:09")) });
    fc.assert(
      fc.property(key, value, addresses, (k, v, a) => {
        const annotations = { [k]: v, [ANNOTATION.ipAddress]: a.ip, [ANNOTATION.macAddress]: a.mac };
        const pod: KubeObject = {
          metadata: { name: "p", namespace: "shop", annotations },
          spec: { containers: [] },
        };
        const verdict = validatePod(request("Pod", "", "pods", pod, "shop"), gateway, settings);
        // The view indexes the same annotations; the NAT a stored pod asks for is read from them.
        gateway.apply("Pod", "ADDED", pod);
        gateway.apply("Pod", "DELETED", pod);
        natWantOf("shop", "p", annotations, "distributed", "kube-ovn");
        return namesField(verdict, annotationField(k));
      }),
      RUNS,
    );
    t.ok(rejected > 0, `held for every generated value; ${rejected} of them were rejections`);
    rejected = 0;
  },
);

t.test(
  "the gateway ConfigMap: never throws; every problem names its key; the rule names the ConfigMap",
  async (t) => {
    const keys = fc.constantFrom(...Object.keys(SEED_GATEWAY), "type", "nic-macc", "enable-external-gw");
    const data = fc.dictionary(fc.oneof(keys, fc.string({ maxLength: 12 })), userText(ipOrNot), {
      maxKeys: 8,
    });
    const seedWith = data.map((d) => ({ ...SEED_GATEWAY, ...d }));
    fc.assert(
      fc.property(fc.oneof(data, seedWith), (d) => {
        const reading = readGatewayConfig(d);
        const verdict = validateConfigMap(
          request(
            "ConfigMap",
            "",
            "configmaps",
            { metadata: { name: "ovn-external-gw-config", namespace: "kube-system" }, data: d },
            "kube-system",
          ),
          ClusterState.of({}),
          settings,
        );
        return (
          reading.problems.every((p) => p.startsWith('data["')) &&
          namesField(verdict, 'ConfigMap kube-system/ovn-external-gw-config: data["')
        );
      }),
      RUNS,
    );
    t.ok(rejected > 0, `held for every generated value; ${rejected} of them were rejections`);
    rejected = 0;
  },
);
