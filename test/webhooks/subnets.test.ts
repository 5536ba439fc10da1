import t from "tap";
import { ClusterState } from "../../cluster/state.js";
import type { AdmissionRequest } from "../../webhooks/envelope.js";
import type { KubeObject } from "../../domain/kube.js";
import { validateSubnet, validateVpcNatGateway } from "../../webhooks/subnets.js";
import { admissionRequest, settingsWith } from "../fixtures/index.js";

const settings = settingsWith();
const subnet = (name: string, spec: Record<string, unknown>): KubeObject => ({
  apiVersion: "kubeovn.io/v1",
  kind: "Subnet",
  metadata: { name },
  spec,
});
const request = (kind: string, resource: string, object: KubeObject): AdmissionRequest =>
  admissionRequest(kind, resource, object, { group: "kubeovn.io" });
const view = () =>
  ClusterState.of({
    Subnet: [
      subnet("ovn-default", { cidrBlock: "10.16.0.0/16", gateway: "10.16.0.1", default: true }),
      subnet("vpc1-net", { cidrBlock: "192.168.0.0/24,fd00:10::/120", gateway: "192.168.0.1", vpc: "vpc1" }),
    ],
    Vpc: [{ metadata: { name: "vpc1" }, spec: {} }],
    NetworkAttachmentDefinition: [
      {
        metadata: { name: "attachnet", namespace: "default" },
        spec: {
          config:
            '{"type":"kube-ovn","provider":"attachnet.default.ovn","server_socket":"/run/openvswitch/kube-ovn-daemon.sock"}',
        },
      },
    ],
    Pod: [
      {
        metadata: {
          name: "holder",
          namespace: "vpc1-ns",
          annotations: { "ovn.kubernetes.io/ip_address": "192.168.0.254" },
        },
        spec: {},
      },
    ],
  });

t.test(
  "subnets: provider names a NAD (warned otherwise), the Vpc exists, CIDRs do not overlap inside one Vpc",
  async (t) => {
    const v = view();
    const verdict = (name: string, spec: Record<string, unknown>) =>
      validateSubnet(request("Subnet", "subnets", subnet(name, spec)), v, settings);
    t.match(verdict("attach", { cidrBlock: "172.17.0.0/16", provider: "attachnet.default.ovn" }), {
      allowed: true,
      warnings: [],
    });
    t.match(verdict("attach2", { cidrBlock: "172.18.0.0/16", provider: "nope.default.ovn" }), {
      allowed: true,
      warnings: [
        "spec.provider: no NetworkAttachmentDefinition has provider nope.default.ovn yet; pods cannot attach to this subnet until one does",
      ],
    });
    t.match(verdict("x", { cidrBlock: "10.99.0.0/16", vpc: "vpc9" }), {
      allowed: false,
      code: 403,
      message: "spec.vpc: Vpc vpc9 does not exist",
    });
    t.match(verdict("x", { cidrBlock: "10.16.128.0/17" }), {
      allowed: false,
      message:
        "spec.cidrBlock: 10.16.128.0/17 overlaps 10.16.0.0/16 of subnet ovn-default in Vpc ovn-cluster",
    });
    t.match(
      verdict("x", { cidrBlock: "10.0.0.0/8" }),
      { allowed: false, message: /overlaps 10\.16\.0\.0\/16 of subnet ovn-default/ },
      "a wider network overlaps too",
    );
    t.match(verdict("x", { cidrBlock: "172.20.0.0/16,fd00:10::80/121", vpc: "vpc1" }), {
      allowed: false,
      message: "spec.cidrBlock: fd00:10::80/121 overlaps fd00:10::/120 of subnet vpc1-net in Vpc vpc1",
    });
    t.equal(
      verdict("x", { cidrBlock: "10.16.0.0/16", vpc: "vpc1" }).allowed,
      true,
      "another Vpc may reuse a range",
    );
    t.equal(
      verdict("ovn-default", { cidrBlock: "10.16.0.0/16", default: true }).allowed,
      true,
      "a subnet does not overlap itself on UPDATE",
    );
    t.match(verdict("x", { cidrBlock: "10.99.0.0" }), {
      allowed: false,
      code: 400,
      message: 'spec.cidrBlock: "10.99.0.0" is not a network in CIDR notation',
    });
  },
);

t.test("VpcNatGateway: its subnet is in its Vpc; lanIp inside it, not the gateway, not held", async (t) => {
  const v = view();
  const gw = (spec: Record<string, unknown>) =>
    validateVpcNatGateway(
      request("VpcNatGateway", "vpc-nat-gateways", {
        apiVersion: "kubeovn.io/v1",
        kind: "VpcNatGateway",
        metadata: { name: "gw1" },
        spec,
      }),
      v,
      settings,
    );
  t.equal(gw({ vpc: "vpc1", subnet: "vpc1-net", lanIp: "192.168.0.254" }).allowed, false, "held by a pod");
  t.equal(gw({ vpc: "vpc1", subnet: "vpc1-net", lanIp: "192.168.0.250" }).allowed, true);
  const cases: Array<[Record<string, unknown>, string]> = [
    [
      { vpc: "vpc1", subnet: "vpc1-net", lanIp: "192.168.0.254" },
      "spec.lanIp: 192.168.0.254 is held by pod vpc1-ns/holder",
    ],
    [
      { vpc: "vpc1", subnet: "vpc1-net", lanIp: "192.168.0.1" },
      "spec.lanIp: 192.168.0.1 is the gateway of subnet vpc1-net",
    ],
    [
      { vpc: "vpc1", subnet: "vpc1-net", lanIp: "10.16.0.9" },
      "spec.lanIp: 10.16.0.9 is outside subnet vpc1-net (192.168.0.0/24,fd00:10::/120)",
    ],
    [
      { vpc: "vpc1", subnet: "ovn-default", lanIp: "10.16.0.9" },
      "spec.subnet: Subnet ovn-default belongs to Vpc ovn-cluster, not to spec.vpc vpc1",
    ],
    [{ vpc: "vpc1", subnet: "gone", lanIp: "10.16.0.9" }, "spec.subnet: Subnet gone does not exist"],
    [
      { vpc: "vpc1", subnet: "vpc1-net", lanIp: "192.168.0" },
      'spec.lanIp: expected an IP address, found "192.168.0"',
    ],
  ];
  for (const [spec, message] of cases) t.match(gw(spec), { allowed: false, message }, message);
});
