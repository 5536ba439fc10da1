import t from "tap";
import { encodePatch, MalformedReviewError, parseReview } from "../../webhooks/envelope.js";
import { fixture, podReview } from "../fixtures/index.js";

t.test("a realistic pod review parses into a typed request", async (t) => {
  const review = parseReview(fixture("pod-create"));
  t.equal(review.apiVersion, "admission.k8s.io/v1");
  t.match(review.request, {
    uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
    kind: { group: "", version: "v1", kind: "Pod" },
    resource: { group: "", version: "v1", resource: "pods" },
    subResource: "",
    namespace: "shop",
    operation: "CREATE",
    dryRun: false,
    oldObject: null,
  });
  t.equal(review.request.object?.metadata?.name, "web-7d4b9c8f6-x2k9p");
  const beta = parseReview(podReview((r) => (r.apiVersion = "admission.k8s.io/v1beta1")));
  t.equal(beta.apiVersion, "admission.k8s.io/v1beta1");
});

t.test("every malformed review names the field, what was expected and what was found", async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ["not an object", "x", /^body: expected an AdmissionReview object, found string "x"$/],
    [
      "wrong apiVersion",
      podReview((r) => (r.apiVersion = "admission.k8s.io/v2")),
      /^apiVersion: expected admission.k8s.io\/v1 or admission.k8s.io\/v1beta1, found string "admission.k8s.io\/v2"$/,
    ],
    [
      "wrong kind",
      podReview((r) => (r.kind = "Pod")),
      /^kind: expected "AdmissionReview", found string "Pod"$/,
    ],
    [
      "no request",
      { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" },
      /^request: expected an object, found nothing$/,
    ],
    [
      "no uid",
      podReview((r) => delete (r.request as Record<string, unknown>).uid),
      /^request\.uid: expected a string, found nothing$/,
    ],
    ["empty uid", podReview((r) => (r.request.uid = "")), /^request\.uid: expected a non-empty string/],
    [
      "bad operation",
      podReview((r) => (r.request.operation = "PATCH")),
      /^request\.operation: expected CREATE, UPDATE, DELETE or CONNECT, found string "PATCH"$/,
    ],
    [
      "no resource",
      podReview((r) => delete (r.request as Record<string, unknown>).resource),
      /^request\.resource: expected an object, found nothing$/,
    ],
    [
      "object of the wrong type",
      podReview((r) => (r.request.object.kind = "Node")),
      /^request\.object\.kind: expected "Pod" \(request\.kind\), found "Node"$/,
    ],
    [
      "object not an object",
      podReview((r) => ((r.request as Record<string, unknown>).object = [1])),
      /^request\.object: expected an object or null, found an array$/,
    ],
    [
      "annotation not a string",
      podReview((r) => ((r.request.object.metadata.annotations as Record<string, unknown>).x = 5)),
      /^request\.object\.metadata\.annotations: expected an object of strings/,
    ],
    [
      "dryRun not a boolean",
      podReview((r) => ((r.request as Record<string, unknown>).dryRun = "yes")),
      /^request\.dryRun: expected a boolean, found string "yes"$/,
    ],
  ];
  for (const [what, body, message] of cases) {
    t.throws(() => parseReview(body), { name: "MalformedReviewError", message }, what);
  }
  t.equal(new MalformedReviewError("x").statusCode, 400);
});

t.test("a patch is sent as base64 of its JSON", async (t) => {
  const patch = [{ op: "add" as const, path: "/metadata/annotations", value: { a: "b" } }];
  t.same(JSON.parse(Buffer.from(encodePatch(patch), "base64").toString()), patch);
});
