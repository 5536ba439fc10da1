import jsonPatch from "fast-json-patch";
import t from "tap";
import { ClusterState } from "../../cluster/state.js";
import { parseReview } from "../../webhooks/envelope.js";
import { mutatePod, validatePod } from "../../webhooks/pods.js";
import { podReview, podUpdate, settingsWith } from "../fixtures/index.js";

const view = ClusterState.of({});
const settings = settingsWith({ maxRateMbps: 10_000 });

t.test("QoS rates: whole Mbit/s within the bound, for the pod and for each attachment", async (t) => {
  t.same(
    validatePod(parseReview(podReview()).request, view, settings).allowed,
    true,
    "the fixture's 100 and 50",
  );
  const cases: Array<[Record<string, string>, number, string]> = [
    [
      { "ovn.kubernetes.io/ingress_rate": "1.5" },
      400,
      'metadata.annotations["ovn.kubernetes.io/ingress_rate"]: expected a whole number of Mbit/s (e.g. "100"), found "1.5"',
    ],
    [
      { "ovn.kubernetes.io/egress_rate": "100M" },
      400,
      'metadata.annotations["ovn.kubernetes.io/egress_rate"]: expected a whole number of Mbit/s (e.g. "100"), found "100M"',
    ],
    [
      { "storage-net.shop.ovn.ovn.kubernetes.io/ingress_rate": "-1" },
      400,
      'metadata.annotations["storage-net.shop.ovn.ovn.kubernetes.io/ingress_rate"]: expected a whole number of Mbit/s (e.g. "100"), found "-1"',
    ],
    [
      { "ovn.kubernetes.io/ingress_rate": "20000" },
      403,
      'metadata.annotations["ovn.kubernetes.io/ingress_rate"]: expected at most 10000 Mbit/s, found "20000"',
    ],
  ];
  for (const [annotations, code, message] of cases) {
    const request = parseReview(
      podReview((r) => (r.request.object.metadata.annotations = annotations)),
    ).request;
    t.match(validatePod(request, view, settings), { allowed: false, code, message });
  }
  const unrelated = parseReview(
    podReview((r) => (r.request.object.metadata.annotations = { "example.com/ingress_rate": "fast" })),
  ).request;
  t.equal(validatePod(unrelated, view, settings).allowed, true, "other domains' keys are not ours");
});

t.test("a changed EIP or SNAT drops routed in the patch; nothing else changes", async (t) => {
  const before = { "ovn.kubernetes.io/eip": "172.56.0.10", "ovn.kubernetes.io/routed": "true", app: "x" };
  const now = { ...before, "ovn.kubernetes.io/eip": "172.56.0.11" };
  const request = parseReview(podUpdate(now, before)).request;
  const verdict = mutatePod(request, view, settings);
  t.equal(verdict.allowed, true);
  t.same(verdict.patch, [{ op: "remove", path: "/metadata/annotations/ovn.kubernetes.io~1routed" }]);
  const patched = jsonPatch.applyPatch(structuredClone(request.object), verdict.patch, true).newDocument;
  t.same(patched?.metadata?.annotations, { "ovn.kubernetes.io/eip": "172.56.0.11", app: "x" });
  t.match(verdict.warnings, [/ovn.kubernetes.io\/eip changed: ovn.kubernetes.io\/routed removed/]);

  const snatGone = parseReview(
    podUpdate(
      { "ovn.kubernetes.io/routed": "true" },
      { "ovn.kubernetes.io/snat": "172.56.0.20", "ovn.kubernetes.io/routed": "true" },
    ),
  ).request;
  t.equal(mutatePod(snatGone, view, settings).patch.length, 1, "a removed SNAT address drops routed too");
  const same = parseReview(podUpdate(before, before)).request;
  t.same(mutatePod(same, view, settings).patch, [], "unchanged addresses keep routed");
  t.same(mutatePod(parseReview(podReview()).request, view, settings).patch, [], "CREATE is left alone");
});
