import jsonPatch from "fast-json-patch";
import t from "tap";
import { ClusterState } from "../../cluster/state.js";
import type { KubeObject } from "../../domain/kube.js";
import { parseReview } from "../../webhooks/envelope.js";

import { mutatePod, validatePod } from "../../webhooks/pods.js";
import { podReview, podUpdate, SEED_GATEWAY, settingsWith } from "../fixtures/index.js";

const settings = settingsWith();
const gatewayConfigMap = (data: Record<string, string>): KubeObject => ({
  metadata: { name: "ovn-external-gw-config", namespace: "kube-system" },
  data,
});
const pod = (name: string, annotations: Record<string, string>, phase = "Running"): KubeObject => ({
  metadata: { name, namespace: "shop", annotations },
  spec: {},
  status: { phase },
});

const EIP = "ovn.kubernetes.io/eip";
const SNAT = "ovn.kubernetes.io/snat";
const IP = "ovn.kubernetes.io/ip_address";

function viewWith(pods: KubeObject[] = [], data: Record<string, string> = SEED_GATEWAY) {
  return ClusterState.of({ ConfigMap: [gatewayConfigMap(data)], Pod: pods });
}

function validateCreate(annotations: Record<string, string>, view = viewWith()) {
  const request = parseReview(
    podReview((r) => {
      r.request.object.metadata.annotations = annotations;
      // The API server gives a pod its uid before validating webhooks see its CREATE.
      r.request.object.metadata.uid = "9d1c7e4a-0000-4000-8000-00000000c0de";
    }),
  ).request;
  return validatePod(request, view, settings);
}

const field = (key: string) => `metadata.annotations["${key}"]`;

t.test("an EIP: allowed, and the intent is a claim of the address alone, with the pod's uid", async (t) => {
  const verdict = validateCreate({ [EIP]: "172.56.0.233", [IP]: "10.16.0.9" });
  t.equal(verdict.allowed, true);
  t.same(verdict.intents, [
    {
      kind: "nat-claim",
      owner: "shop/web-7d4b9c8f6-x2k9p",
      spec: {
        pod: "shop/web-7d4b9c8f6-x2k9p",
        uid: "9d1c7e4a-0000-4000-8000-00000000c0de",
        holds: { type: "dnat_and_snat", external_ip: "172.56.0.233" },
      },
    },
  ]);
  const early = validateCreate({ [SNAT]: "172.56.0.200" });
  t.equal(early.allowed, true, "before the pod has its IP: checked, and held already");
  t.same(
    early.intents.map((i) => i.spec.holds),
    [{ type: "snat", external_ip: "172.56.0.200" }],
  );
});

t.test(
  "an address outside the network, or its network, broadcast, gateway or nic-ip, is denied",
  async (t) => {
    const cases: Array<[string, string]> = [
      ["172.57.0.9", "172.57.0.9 is outside the external network 172.56.0.0/16"],
      ["172.56.0.0", "172.56.0.0 is the network address of 172.56.0.0/16"],
      ["172.56.255.255", "172.56.255.255 is the broadcast address of 172.56.0.0/16"],
      ["172.56.0.1", "172.56.0.1 is the physical gateway's address (external-gw-addr)"],
      ["172.56.0.254", "172.56.0.254 is the gateway router port's address (nic-ip)"],
    ];
    for (const key of [EIP, SNAT]) {
      for (const [ip, why] of cases) {
        const verdict = validateCreate({ [key]: ip, [IP]: "10.16.0.9" });
        t.equal(verdict.allowed, false, `${key} ${ip}`);
        t.equal(verdict.message, `${field(key)}: ${why}`);
      }
    }
    const malformed = validateCreate({ [EIP]: "172.56.0.300" });
    t.equal(malformed.code, 400);
    t.equal(
      malformed.message,
      `${field(EIP)}: expected an IP address (e.g. "172.56.0.233"), found "172.56.0.300"`,
    );
  },
);

t.test("an EIP is one pod's, never also an SNAT address; the holder is named", async (t) => {
  const view = viewWith([
    pod("holder", { [EIP]: "172.56.0.233" }),
    pod("sharer-1", { [SNAT]: "172.56.0.200" }),
    pod("sharer-2", { [SNAT]: "172.56.0.200" }),
    pod("done", { [EIP]: "172.56.0.240" }, "Succeeded"),
  ]);
  t.equal(
    validateCreate({ [EIP]: "172.56.0.233" }, view).message,
    `${field(EIP)}: 172.56.0.233 is already the EIP of pod shop/holder`,
  );
  t.equal(
    validateCreate({ [EIP]: "172.56.0.200" }, view).message,
    `${field(EIP)}: 172.56.0.200 is already the SNAT address of pod shop/sharer-1, shop/sharer-2`,
  );
  t.equal(
    validateCreate({ [SNAT]: "172.56.0.233" }, view).message,
    `${field(SNAT)}: 172.56.0.233 is already the EIP of pod shop/holder`,
  );
  t.equal(validateCreate({ [SNAT]: "172.56.0.200" }, view).allowed, true, "SNAT addresses are shared");
  t.equal(validateCreate({ [EIP]: "172.56.0.240" }, view).allowed, true, "a finished pod holds nothing");
  const both = validateCreate({ [EIP]: "172.56.0.233", [SNAT]: "172.56.0.200" }, viewWith());
  t.equal(both.allowed, false);
  t.equal(
    both.message,
    `${field(EIP)} and ${field(SNAT)}: a pod has either an EIP (its own address, both directions) or an SNAT address (shared, outbound only), not both; found eip 172.56.0.233 and snat 172.56.0.200`,
  );
  const itself = viewWith([pod("web-7d4b9c8f6-x2k9p", { [EIP]: "172.56.0.233" })]);
  t.equal(
    validateCreate({ [EIP]: "172.56.0.233" }, itself).allowed,
    true,
    "a pod does not conflict with itself",
  );
});

t.test("without an enabled, valid gateway there is no EIP", async (t) => {
  t.equal(
    validateCreate({ [EIP]: "172.56.0.233" }, viewWith([], { "enable-external-gw": "false" })).message,
    `${field(EIP)}: the external gateway is not enabled (ConfigMap kube-system/ovn-external-gw-config with enable-external-gw: "true")`,
  );
  t.equal(
    validateCreate({ [EIP]: "172.56.0.233" }, ClusterState.of({ ConfigMap: [] })).allowed,
    false,
    "no ConfigMap at all",
  );
  t.match(
    validateCreate({ [EIP]: "172.56.0.233" }, viewWith([], { ...SEED_GATEWAY, type: "centrailized" }))
      .message,
    /ConfigMap kube-system\/ovn-external-gw-config is not usable: data\["type"\]: did you mean "centralized"\?/,
  );
  t.equal(
    validateCreate({ [EIP]: "172.56.0.233" }, ClusterState.of({})).allowed,
    true,
    "no cluster view of ConfigMaps: only the address itself is judged",
  );
});

t.test(
  "UPDATE: a changed EIP drops routed and claims the new one; removing or keeping one asks for nothing",
  async (t) => {
    const before = { [EIP]: "172.56.0.233", [IP]: "10.16.0.9", "ovn.kubernetes.io/routed": "true" };
    const changed = parseReview(podUpdate({ ...before, [EIP]: "172.56.0.221" }, before)).request;
    const mutated = mutatePod(changed, viewWith(), settings);
    const patched = jsonPatch.applyPatch(structuredClone(changed.object), mutated.patch)
      .newDocument as KubeObject;
    t.same(
      patched.metadata?.annotations,
      { [EIP]: "172.56.0.221", [IP]: "10.16.0.9" },
      "routed removed by the patch",
    );
    const validated = validatePod({ ...changed, object: patched }, viewWith(), settings);
    t.same(validated.intents[0]?.spec, {
      pod: "shop/web-7d4b9c8f6-x2k9p",
      uid: "",
      holds: { type: "dnat_and_snat", external_ip: "172.56.0.221" },
    });
    const removed = parseReview(podUpdate({ [IP]: "10.16.0.9" }, before)).request;
    t.same(
      validatePod(removed, viewWith(), settings).intents,
      [],
      "released when the pod is stored without it, not on the request",
    );
    const untouched = parseReview(podUpdate({ ...before, app: "v2" }, before)).request;
    t.same(
      validatePod(untouched, viewWith(), settings).intents,
      [],
      "a routed pod edited elsewhere: nothing to do",
    );
    const ipArrives = parseReview(
      podUpdate({ [EIP]: "172.56.0.233", [IP]: "10.16.0.9" }, { [EIP]: "172.56.0.233" }),
    ).request;
    t.same(
      validatePod(ipArrives, viewWith(), settings).intents,
      [],
      "the IP arriving is programmed from the stored pod; the address was held since CREATE",
    );
  },
);

t.test("a pod of a custom VPC has no EIP through the gateway ConfigMap", async (t) => {
  const view = ClusterState.of({
    ConfigMap: [gatewayConfigMap(SEED_GATEWAY)],
    Subnet: [{ metadata: { name: "vpc1-net" }, spec: { cidrBlock: "192.168.0.0/24", vpc: "vpc1" } }],
  });
  const verdict = validateCreate(
    { [EIP]: "172.56.0.233", "ovn.kubernetes.io/logical_switch": "vpc1-net" },
    view,
  );
  t.equal(
    verdict.message,
    `${field(EIP)}: the pod's subnet vpc1-net is in VPC vpc1; EIP and SNAT through kube-system/ovn-external-gw-config serve the default VPC ovn-cluster only (a custom VPC uses a VpcNatGateway)`,
  );
  const defaultVpc = ClusterState.of({
    ConfigMap: [gatewayConfigMap(SEED_GATEWAY)],
    Subnet: [{ metadata: { name: "ovn-default" }, spec: { cidrBlock: "10.16.0.0/16", vpc: "ovn-cluster" } }],
  });
  t.equal(validateCreate({ [EIP]: "172.56.0.233" }, defaultVpc).allowed, true, "the default VPC's subnet");
});
