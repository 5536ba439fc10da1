import jsonPatch from "fast-json-patch";
import t from "tap";
import { buildPatch, editable } from "../../webhooks/patch.js";

t.test("annotation keys with / and ~ are escaped per RFC 6901, and the patch applies", async (t) => {
  const original: { metadata: { name: string; annotations: Record<string, string> } } = {
    metadata: { name: "p", annotations: { "ovn.kubernetes.io/routed": "true", keep: "x" } },
  };
  const mutated = editable(original);
  delete mutated.metadata.annotations["ovn.kubernetes.io/routed"];
  mutated.metadata.annotations["example.com/a~b"] = "1";
  const patch = buildPatch(original, mutated);
  t.same(patch.map((p) => p.path).sort(), [
    "/metadata/annotations/example.com~1a~0b",
    "/metadata/annotations/ovn.kubernetes.io~1routed",
  ]);
  // Applied by an independent RFC 6902 implementation, the patch gives the mutated object.
  t.same(jsonPatch.applyPatch(structuredClone(original), structuredClone(patch), true).newDocument, mutated);
  t.same(
    original.metadata.annotations,
    { "ovn.kubernetes.io/routed": "true", keep: "x" },
    "original untouched",
  );
});

t.test("an object without metadata.annotations gets one add of the whole map", async (t) => {
  const original = { metadata: { name: "p" } };
  const mutated = editable(original) as { metadata: { name: string; annotations?: Record<string, string> } };
  mutated.metadata.annotations = { "ovn.kubernetes.io/logical_switch": "ovn-default" };
  const patch = buildPatch(original, mutated);
  t.same(patch, [
    {
      op: "add",
      path: "/metadata/annotations",
      value: { "ovn.kubernetes.io/logical_switch": "ovn-default" },
    },
  ]);
  t.same(jsonPatch.applyPatch(structuredClone(original), patch, true).newDocument, mutated);
});

t.test("no change, no patch", async (t) => {
  const o = { metadata: { name: "p", labels: { a: "b" } }, spec: { containers: [{ name: "c" }] } };
  t.same(buildPatch(o, editable(o)), []);
});
