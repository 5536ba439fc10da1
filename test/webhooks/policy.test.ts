import t from "tap";
import { ClusterState } from "../../cluster/state.js";
import { applyPolicy, policyFor } from "../../webhooks/policy.js";
import { allow, deny } from "../../webhooks/verdict.js";

const LABEL = "ovn-admission.io/policy";
const view = ClusterState.of({
  Namespace: [
    { metadata: { name: "strict" } },
    { metadata: { name: "lenient", labels: { [LABEL]: "warn" } } },
    { metadata: { name: "legacy", labels: { [LABEL]: "off" } } },
    { metadata: { name: "typo", labels: { [LABEL]: "warning" } } },
  ],
});

t.test("the namespace label chooses the mode; enforce by default", async (t) => {
  t.same(policyFor("strict", view, LABEL), { mode: "enforce" });
  t.same(policyFor("unknown-ns", view, LABEL), { mode: "enforce" });
  t.same(policyFor("", view, LABEL), { mode: "enforce" }, "cluster-scoped objects");
  t.same(policyFor("lenient", view, LABEL), { mode: "warn" });
  t.same(policyFor("legacy", view, LABEL), { mode: "off" });
  t.match(policyFor("typo", view, LABEL), {
    mode: "enforce",
    warning: 'namespace typo: label ovn-admission.io/policy="warning" is not enforce, warn or off; enforcing',
  });
});

t.test("warn turns a denial into an allowed warning and drops its intents", async (t) => {
  const denial = {
    ...deny('metadata.annotations["ovn.kubernetes.io/eip"]: 172.56.0.10 is held by pod shop/web-0'),
    intents: [{ kind: "nat", owner: "shop/web-1", spec: {} }],
  };
  const warned = applyPolicy(denial, { mode: "warn" });
  t.equal(warned.allowed, true);
  t.same(warned.intents, [], "nothing is programmed");
  t.match(
    warned.warnings[0],
    /is held by pod shop\/web-0 \(namespace policy is warn: admitted anyway, and nothing is programmed in OVN for it\)/,
  );
  t.same(applyPolicy(denial, { mode: "enforce" }), denial);
  const allowed = allow({ intents: [{ kind: "nat", owner: "shop/web-1", spec: {} }] });
  t.same(applyPolicy(allowed, { mode: "warn" }), allowed, "an allowed verdict keeps its intents");
});
