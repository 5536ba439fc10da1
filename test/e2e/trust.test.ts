/**
 * The trust boundary, end to end (ADR 0004): anything that reaches the
 * service can POST an AdmissionReview, but only objects the API server
 * stored change the network. Forged reviews, sent with the right CA as any
 * pod could, change no row and dial nowhere; the same objects applied
 * through a real kube-apiserver are programmed; a Node that a later webhook
 * denies leaves OVS untouched. With --client-ca-file, only the API server's
 * client certificate gets through.
 */
import { readFileSync } from "node:fs";
import https from "node:https";
import net from "node:net";
import path from "node:path";
import Fastify from "fastify";
import t, { type Test } from "tap";
import { AdmissionregistrationV1Api, CoreV1Api } from "@kubernetes/client-node";
import { op } from "ovsdb-client";
import { createCertificateAuthority, issueCertificate } from "../../tls/certificates.js";
import { forgedReview, SEED_GATEWAY } from "../fixtures/index.js";
import { encapIpsOf, freePort, nodesFor, scratchDir, type SimulatedNode } from "../harness/index.js";
import { apiMessage, kubeFor } from "../harness/kube.js";
import { responseOf, serviceFor, type TestService } from "../harness/service.js";
import { waitFor } from "../harness/wait.js";

const NB = "OVN_Northbound";
const NN = "ovn.kubernetes.io/node_networks";

const encapIps = encapIpsOf;

/** A TCP listener standing where a forged body says a node's Open_vSwitch is: it counts who dials it. */
async function bait(t: Test): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections };
}

async function natOn(s: TestService, router: string): Promise<string[]> {
  const [nat, on] = await s.service.northbound.transact(NB, [
    op.select("NAT", [], ["_uuid", "external_ip", "logical_ip"]),
    op.select("Logical_Router", [["name", "==", router]], ["nat"]),
  ]);
  const linked = new Set(((on?.rows?.[0]?.nat as string[] | undefined) ?? []).map(String));
  return (nat?.rows ?? [])
    .filter((r) => linked.has(String(r._uuid)))
    .map((r) => `${String(r.external_ip)} ${String(r.logical_ip)}`);
}

async function externalSwitch(s: TestService): Promise<number> {
  const [found] = await s.service.northbound.transact(NB, [
    op.select("Logical_Switch", [["name", "==", "external"]], ["name"]),
  ]);
  return found?.rows?.length ?? 0;
}

t.test(
  "forged reviews change nothing and dial nowhere; the same objects through the API server are programmed",
  async (t) => {
    const [node1] = (await nodesFor(t, ["node-1"])) as [SimulatedNode];
    const trap = await bait(t);
    const kube = await kubeFor(t);
    const s = await serviceFor(t, [
      "--kubeconfig",
      kube.kubeconfigFile,
      // Any node not overridden would be dialled at its InternalIP on the bait's port.
      "--node-ovsdb-remote",
      `tcp:{nodeIP}:${trap.port}`,
      "--node-ovsdb-override",
      `node-1=${node1.ovs.unixRemote}`,
      "--lease-namespace",
      "default",
      "--reconcile-interval",
      "0.5",
      "--nat-release-grace",
      "1",
    ]);
    await kube.registerWebhooks(s.service.url, s.service.caFile as string);
    const core = kube.kubeConfig.makeApiClient(CoreV1Api);
    await waitFor("this replica to lead", () => s.logs.some((l) => l.event === "lease-acquired"));
    await core.createNamespace({ body: { metadata: { name: "shop" } } });
    await core.createNode({
      body: {
        metadata: { name: "node-1", annotations: { [NN]: JSON.stringify({ storage: "10.10.10.1" }) } },
        status: { addresses: [{ type: "InternalIP", address: "192.168.1.1" }] },
      },
    });
    await waitFor("node-1 programmed", async () => (await encapIps(node1)) === '"192.168.1.1,10.10.10.1"');
    const stored = await core.readNode({ name: "node-1" });

    // 1. A Node no API server stored, pointing at the bait; and a forged change of a stored one.
    const ghost = {
      metadata: { name: "ghost", annotations: { [NN]: JSON.stringify({ storage: "10.10.10.66" }) } },
      status: { addresses: [{ type: "InternalIP", address: "127.0.0.1" }] },
    };
    const changed = {
      metadata: {
        name: "node-1",
        uid: stored.metadata?.uid,
        annotations: { [NN]: JSON.stringify({ storage: "10.10.10.1", evil: "10.66.66.66" }) },
      },
      status: { addresses: [{ type: "InternalIP", address: "127.0.0.1" }] },
    };
    const answers = [
      await s.review("/mutate", forgedReview("Node", "nodes", "CREATE", ghost)),
      await s.review("/validate", forgedReview("Node", "nodes", "CREATE", ghost)),
      await s.review(
        "/validate",
        forgedReview("Node", "nodes", "UPDATE", changed, "", { metadata: stored.metadata }),
      ),
    ];
    // 2. The gateway ConfigMap, enabled, naming the stored node.
    const gateway = {
      metadata: { name: "ovn-external-gw-config", namespace: "kube-system" },
      data: { ...SEED_GATEWAY, "external-gw-nodes": "node-1" },
    };
    answers.push(
      await s.review("/validate", forgedReview("ConfigMap", "configmaps", "CREATE", gateway, "kube-system")),
    );
    // 3. A pod with an EIP that will never be stored.
    const phantom = {
      metadata: {
        name: "phantom",
        namespace: "shop",
        uid: "phantom-uid",
        annotations: { "ovn.kubernetes.io/eip": "172.56.0.66", "ovn.kubernetes.io/ip_address": "10.16.0.66" },
      },
      spec: { containers: [{ name: "c", image: "i" }] },
    };
    answers.push(await s.review("/validate", forgedReview("Pod", "pods", "CREATE", phantom, "shop")));
    t.same(
      answers.map((a) => responseOf(a).allowed),
      [true, true, true, true, false],
      "each forged review got an answer (the pod: no gateway is stored, so no EIP)",
    );

    // Give any write that would follow a request the time it would take.
    await new Promise((r) => setTimeout(r, 1500));
    t.equal(trap.connections(), 0, "nothing dialled the address a forged body named");
    t.equal(await encapIps(node1), '"192.168.1.1,10.10.10.1"', "the stored node's OVS is unchanged");
    t.equal(await externalSwitch(s), 0, "no gateway programmed from a forged ConfigMap");
    t.same(await natOn(s, "ovn-cluster"), [], "no NAT row");

    // The same ConfigMap and a pod through the API server: programmed.
    await core.createNamespacedConfigMap({ namespace: "kube-system", body: gateway });
    await waitFor("the stored ConfigMap's gateway", async () => (await externalSwitch(s)) === 1);
    t.pass("the stored ConfigMap is programmed");
    await waitFor("the view to have the gateway", () => s.service.view.gatewayConfig() !== undefined);

    // Now a forged pod whose EIP passes every check: admission claims it, and nothing else.
    const claimed = responseOf(
      await s.review("/validate", forgedReview("Pod", "pods", "CREATE", phantom, "shop")),
    );
    t.equal(claimed.allowed, true, "a well-formed forged pod is admitted (admission cannot tell)");
    t.same(
      await natOn(s, "ovn-admission-claims"),
      ["172.56.0.66 0.0.0.0"],
      "its address is held, routing nothing",
    );
    t.same(await natOn(s, "ovn-cluster"), [], "and nothing routes to the IP its body named");
    await waitFor(
      "the claim no stored pod asks for to be released after the grace",
      async () => (await natOn(s, "ovn-admission-claims")).length === 0,
    );
    t.pass("nothing left behind after the grace");

    await core.createNamespacedPod({
      namespace: "shop",
      body: {
        metadata: {
          name: "real",
          annotations: {
            "ovn.kubernetes.io/eip": "172.56.0.66",
            "ovn.kubernetes.io/ip_address": "10.16.0.7",
          },
        },
        spec: { containers: [{ name: "c", image: "i" }] },
      },
    });
    await waitFor("the stored pod's row", async () => (await natOn(s, "ovn-cluster")).length === 1);
    t.same(await natOn(s, "ovn-cluster"), ["172.56.0.66 10.16.0.7"], "the stored pod is programmed");
    t.equal(trap.connections(), 0, "still nothing dialled");
  },
);

t.test("a Node that a later webhook denies leaves OVS untouched", async (t) => {
  const [node1] = (await nodesFor(t, ["node-1"])) as [SimulatedNode];
  const kube = await kubeFor(t);
  const s = await serviceFor(t, [
    "--kubeconfig",
    kube.kubeconfigFile,
    "--node-ovsdb-override",
    `node-1=${node1.ovs.unixRemote}`,
    "--lease-namespace",
    "default",
  ]);
  await kube.registerWebhooks(s.service.url, s.service.caFile as string);
  // Another team's validating webhook that runs after ours and denies nodes labelled freeze=yes.
  const certs = path.join(s.config.certsDir);
  const other = Fastify({
    https: {
      cert: readFileSync(path.join(certs, "tls.crt")),
      key: readFileSync(path.join(certs, "tls.key")),
    },
  });
  other.post("/deny", async (request) => {
    const review = request.body as {
      request: { uid: string; object: { metadata?: { labels?: Record<string, string> } } };
    };
    const frozen = review.request.object.metadata?.labels?.freeze === "yes";
    return {
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: {
        uid: review.request.uid,
        allowed: !frozen,
        ...(frozen ? { status: { code: 403, message: "frozen nodes may not change" } } : {}),
      },
    };
  });
  await other.listen({ host: "127.0.0.1", port: 0 });
  t.teardown(() => other.close());
  const otherUrl = `https://127.0.0.1:${(other.server.address() as net.AddressInfo).port}/deny`;
  await kube.kubeConfig.makeApiClient(AdmissionregistrationV1Api).createValidatingWebhookConfiguration({
    body: {
      metadata: { name: "zz-freeze" },
      webhooks: [
        {
          name: "freeze.example.com",
          clientConfig: {
            url: otherUrl,
            caBundle: readFileSync(s.service.caFile as string).toString("base64"),
          },
          rules: [
            { apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["nodes"] },
          ],
          sideEffects: "None",
          admissionReviewVersions: ["v1"],
          failurePolicy: "Fail",
        },
      ],
    },
  });
  const core = kube.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNode({
    body: {
      metadata: { name: "node-1", annotations: { [NN]: JSON.stringify({ storage: "10.10.10.1" }) } },
      status: { addresses: [{ type: "InternalIP", address: "192.168.1.1" }] },
    },
  });
  await waitFor("node-1 programmed", async () => (await encapIps(node1)) === '"192.168.1.1,10.10.10.1"');
  const frozen = await core.readNode({ name: "node-1" });
  frozen.metadata!.labels = { ...frozen.metadata?.labels, freeze: "yes" };
  frozen.metadata!.annotations![NN] = JSON.stringify({ storage: "10.10.10.1", app: "172.16.0.1" });
  const denied = await waitFor("the freeze webhook to answer", async () => {
    try {
      await core.replaceNode({ name: "node-1", body: frozen });
      return "replaced";
    } catch (err) {
      const message = apiMessage(err);
      return message.includes("frozen") ? message : undefined;
    }
  });
  t.match(denied, /freeze\.example\.com.*frozen nodes may not change/, "the later webhook denied it");
  t.ok(
    s.logs.some(
      (l) =>
        l.event === "admission" && l.kind === "Node" && l.operation === "UPDATE" && l.verdict === "allowed",
    ),
    "our validating webhook had allowed it",
  );
  await new Promise((r) => setTimeout(r, 1000));
  t.equal(await encapIps(node1), '"192.168.1.1,10.10.10.1"', "OVS untouched");
});

t.test("--client-ca-file: the API server's client certificate gets through, nothing else does", async (t) => {
  const dir = scratchDir("oa-mtls-");
  const clientCa = await createCertificateAuthority(dir, "webhook-client-ca", "webhook client CA", 2);
  const apiserverClient = await issueCertificate(dir, "apiserver-webhook-client", clientCa, {
    commonName: "kube-apiserver-webhook-client",
    usage: "clientAuth",
    days: 2,
  });
  const port = await freePort();
  const metricsPort = await freePort();
  const kube = await kubeFor(t, {
    webhookClient: { target: `127.0.0.1:${port}`, ...apiserverClient },
  });
  const s = await serviceFor(t, [
    "--kubeconfig",
    kube.kubeconfigFile,
    "--port",
    String(port),
    "--client-ca-file",
    clientCa.certFile,
    "--metrics-port",
    String(metricsPort),
  ]);
  await kube.registerWebhooks(s.service.url, s.service.caFile as string);
  const core = kube.kubeConfig.makeApiClient(CoreV1Api);
  const message = await waitFor("our node webhook to answer through the API server", async () => {
    try {
      await core.createNode({
        body: { metadata: { name: "probe", annotations: { [NN]: '{"Storage":"10.10.10.9"}' } } },
        dryRun: "All",
      });
      return undefined;
    } catch (err) {
      return apiMessage(err);
    }
  });
  t.match(
    message,
    /plane "Storage": expected a DNS label/,
    "the API server, with its client certificate, is answered",
  );

  const review = forgedReview("Node", "nodes", "CREATE", { metadata: { name: "x" } });
  const anonymous = await s.review("/validate", review);
  t.equal(anonymous.status, 401, "no client certificate: 401");
  t.match(anonymous.json, { code: "UNAUTHENTICATED", error: /client certificate required/ });
  t.ok(
    s.logs.some((l) => l.event === "request-unauthenticated" && l.url === "/validate"),
    "and a log line says so",
  );
  // A certificate from another CA is refused too.
  const strangerCa = await createCertificateAuthority(dir, "stranger-ca", "stranger", 2);
  const stranger = await issueCertificate(dir, "stranger", strangerCa, {
    commonName: "x",
    usage: "clientAuth",
  });
  const agent = new https.Agent({
    cert: readFileSync(stranger.certFile),
    key: readFileSync(stranger.keyFile),
    ca: s.ca,
  });
  const refused = await s.review("/mutate", review, agent);
  t.equal(refused.status, 401, "a certificate the CA did not sign: 401");
  const trusted = new https.Agent({
    cert: readFileSync(apiserverClient.certFile),
    key: readFileSync(apiserverClient.keyFile),
    ca: s.ca,
  });
  t.equal((await s.review("/validate", review, trusted)).status, 200, "the CA's certificate: answered");

  t.equal((await s.request("GET", "/healthz")).status, 200, "health stays open for probes");
  t.equal((await s.request("GET", "/metrics")).status, 200, "metrics too");
  const plain = await fetch(`${s.service.metricsUrl}/metrics`);
  t.equal(plain.status, 200, "and on --metrics-port over plain HTTP");
  t.match(await plain.text(), /ovn_admission_malformed_requests_total\{reason="unauthenticated"\} 2/);
  t.equal((await fetch(`${s.service.metricsUrl}/readyz`)).status, 200);
  t.equal(
    (await fetch(`${s.service.metricsUrl}/validate`, { method: "POST" })).status,
    404,
    "no admission there",
  );
});
