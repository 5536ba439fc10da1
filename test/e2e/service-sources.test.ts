/**
 * Which endpoints the ovn-kubernetes model watches, asked of a real
 * kube-apiserver: 1.20 serves EndpointSlices as discovery.k8s.io/v1beta1 only,
 * so that is what the view lists and watches (v1 from 1.21; Endpoints where
 * no slice is served).
 */
import t from "tap";
import { serviceSources } from "../../cluster/informers.js";
import { kubeFor } from "../harness/kube.js";

t.test("the EndpointSlice version the API server serves is the one watched", async (t) => {
  const kube = await kubeFor(t);
  const served = await kube.kubectl(["api-versions"]);
  const sources = (await serviceSources(kube.kubeConfig)).map((s) => s.path);
  const expected = served.includes("discovery.k8s.io/v1\n")
    ? "/apis/discovery.k8s.io/v1/endpointslices"
    : served.includes("discovery.k8s.io/v1beta1")
      ? "/apis/discovery.k8s.io/v1beta1/endpointslices"
      : "/api/v1/endpoints";
  t.same(
    sources,
    ["/api/v1/services", expected],
    `this API server serves: ${
      served
        .split("\n")
        .filter((v) => v.startsWith("discovery"))
        .join(", ") || "no discovery.k8s.io"
    }`,
  );
});
