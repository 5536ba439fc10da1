/**
 * A real Kubernetes API for end-to-end tests: etcd and kube-apiserver on
 * loopback with generated certificates and RBAC, the CRDs the product reads
 * from manifests/crds/, and our webhook configurations pointed at a local
 * service. Binaries follow the envtest convention (KUBEBUILDER_ASSETS), else
 * the folder scripts/kube-assets.sh builds them into.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import {
  ApiException,
  CustomObjectsApi,
  type CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  type KubernetesObject,
} from "@kubernetes/client-node";
import type { Test } from "tap";
import { documents } from "./kustomize.js";
import { freePort, scratchDir } from "ovsdb-sandbox";
import { createCertificateAuthority, issueCertificate } from "../../tls/certificates.js";
import { waitFor } from "./wait.js";

/** Where the e2e binaries are, or why there are none. */
export function kubeAssets(): { dir: string } | { missing: string } {
  const candidates = [
    process.env.KUBEBUILDER_ASSETS,
    path.join(
      process.env.OVN_ADMISSION_CACHE ??
        path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "ovn-admission"),
      "kube-1.20",
      "bin",
    ),
  ].filter((d): d is string => Boolean(d));
  for (const dir of candidates) {
    if (existsSync(path.join(dir, "etcd")) && existsSync(path.join(dir, "kube-apiserver"))) return { dir };
  }
  return {
    missing: `no etcd and kube-apiserver in ${candidates.join(" or ")}: run scripts/kube-assets.sh (npm test does), or set KUBEBUILDER_ASSETS`,
  };
}

export interface KubeOptions {
  /** Serve watches from etcd directly (no watch cache), so a compacted resourceVersion gives 410 Gone. */
  watchCache?: boolean;
  /**
   * The client certificate kube-apiserver presents to the webhook at
   * `target` ("host:port"), through an AdmissionConfiguration whose
   * kubeConfigFile names it: what a self-managed cluster does for
   * `--client-ca-file`.
   */
  webhookClient?: { target: string; certFile: string; keyFile: string };
  /**
   * Also run kube-controller-manager (the deployment, replicaset, endpoint
   * and endpointslice controllers) and kube-scheduler, as the admin: Deployments make pods and
   * pods get bound. No kubelet runs: a test makes its Nodes Ready itself.
   */
  controllers?: boolean;
}

/** The AdmissionConfiguration that gives both webhook plugins a kubeconfig: its users are webhook hosts. */
function writeAdmissionConfiguration(dir: string, client: NonNullable<KubeOptions["webhookClient"]>): string {
  const kubeconfig = path.join(dir, "webhook-kubeconfig.yaml");
  writeFileSync(
    kubeconfig,
    [
      "apiVersion: v1",
      "kind: Config",
      "users:",
      `- name: ${JSON.stringify(client.target)}`,
      "  user:",
      `    client-certificate: ${JSON.stringify(client.certFile)}`,
      `    client-key: ${JSON.stringify(client.keyFile)}`,
      "",
    ].join("\n"),
  );
  const plugin = (name: string) => [
    `- name: ${name}`,
    "  configuration:",
    "    apiVersion: apiserver.config.k8s.io/v1",
    "    kind: WebhookAdmissionConfiguration",
    `    kubeConfigFile: ${JSON.stringify(kubeconfig)}`,
  ];
  const file = path.join(dir, "admission-configuration.yaml");
  writeFileSync(
    file,
    [
      "apiVersion: apiserver.config.k8s.io/v1",
      "kind: AdmissionConfiguration",
      "plugins:",
      ...plugin("ValidatingAdmissionWebhook"),
      ...plugin("MutatingAdmissionWebhook"),
      "",
    ].join("\n"),
  );
  return file;
}

export interface KubeApi {
  kubeConfig: KubeConfig;
  kubeconfigFile: string;
  objects: KubernetesObjectApi;
  url: string;
  /** Creates a Kube-OVN Subnet (kubeovn.io/v1) as the admin. */
  createSubnet(name: string, spec: Record<string, unknown>, options?: { dryRun?: boolean }): Promise<unknown>;
  /** A kubeconfig file for a user with a client certificate (RBAC decides what it may do). */
  userKubeconfig(user: string): Promise<string>;
  /** Stops and starts kube-apiserver (etcd keeps the data): every watch is lost. */
  restartApiServer(): Promise<void>;
  /** Compacts etcd up to its current revision: older resourceVersions are gone. */
  compact(): Promise<void>;
  /**
   * Runs kubectl (built with the API server by scripts/kube-assets.sh) as the
   * admin, `input` on its standard input (`apply -f -`); its output. A refusal
   * rejects with kubectl's own words (what a user reads).
   */
  kubectl(args: string[], input?: string): Promise<string>;
  /** Registers the webhook configurations of manifests/base/webhooks.yaml at `serviceUrl`, trusting `caFile`. */
  registerWebhooks(serviceUrl: string, caFile: string): Promise<void>;
  stop(): Promise<void>;
}

function startProcess(
  binary: string,
  args: string[],
  logFile: string,
): { child: ChildProcess; exited: Promise<void>; tail: () => string } {
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  const log: Buffer[] = [];
  const tail = () => Buffer.concat(log).toString().slice(-1500);
  child.stdout?.on("data", (d: Buffer) => log.push(d));
  child.stderr?.on("data", (d: Buffer) => log.push(d));
  const exited = new Promise<void>((resolve) =>
    child.on("exit", () => {
      writeFileSync(logFile, Buffer.concat(log));
      resolve();
    }),
  );
  running.add(child);
  child.on("exit", () => running.delete(child));
  return { child, exited, tail };
}

/** Control-plane processes still running: one exit hook kills them all (not one listener per process). */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** A control-plane process exited while we waited for it (a port taken between freePort and bind, say). */
class EarlyExit extends Error {
  override name = "EarlyExit";
}

/**
 * SIGTERM, then SIGKILL after a second: kube-apiserver's graceful shutdown
 * waits 60 s for open watches, which a test has no use for.
 */
async function terminate(process_: { child: ChildProcess; exited: Promise<void> }): Promise<void> {
  process_.child.kill("SIGTERM");
  const timer = setTimeout(() => process_.child.kill("SIGKILL"), 1000);
  await process_.exited;
  clearTimeout(timer);
}

const yamlObjects = (file: string): KubernetesObject[] => documents(file) as unknown as KubernetesObject[];

/** Starts etcd and kube-apiserver for one test; everything stops when the test ends. */
export async function kubeFor(t: Test, options: KubeOptions = {}): Promise<KubeApi> {
  const kube = await startKube(options);
  t.teardown(() => kube.stop());
  return kube;
}

/** Starts etcd and kube-apiserver; the caller stops them (kubeFor does it for a test). */
export async function startKube(options: KubeOptions = {}): Promise<KubeApi> {
  const assets = kubeAssets();
  if ("missing" in assets) throw new Error(assets.missing);
  const dir = scratchDir("oa-kube-");
  const pki = path.join(dir, "pki");
  mkdirSync(pki);
  const ca = await createCertificateAuthority(pki, "ca", "ovn-admission e2e CA", 2);
  const serving = await issueCertificate(pki, "apiserver", ca, {
    commonName: "kube-apiserver",
    subjectAltNames: ["IP:127.0.0.1", "DNS:localhost", "IP:10.0.0.1", "DNS:kubernetes.default.svc"],
    usage: "serverAuth",
    days: 2,
  });
  // The admin is in system:masters: RBAC lets it do everything.
  const admin = await issueCertificate(pki, "admin", ca, {
    commonName: "admin",
    organization: "system:masters",
    usage: "clientAuth",
    days: 2,
  });
  const serviceAccountKey = path.join(pki, "sa.key");
  execFileSync("openssl", ["genrsa", "-out", serviceAccountKey, "2048"], { stdio: "ignore" });
  execFileSync("openssl", ["rsa", "-in", serviceAccountKey, "-pubout", "-out", path.join(pki, "sa.pub")], {
    stdio: "ignore",
  });

  // A port found free may be taken by a parallel test before the process binds it: then the
  // process exits, and the control plane starts again on other ports.
  for (let attempt = 1; ; attempt++) {
    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    rmSync(path.join(dir, "etcd"), { recursive: true, force: true });
    const etcd = startProcess(
      path.join(assets.dir, "etcd"),
      [
        "--name=e2e",
        `--data-dir=${path.join(dir, "etcd")}`,
        `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=e2e=http://127.0.0.1:${peerPort}`,
        "--unsafe-no-fsync=true",
      ],
      path.join(dir, "etcd.log"),
    );
    const apiserverArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      "--insecure-port=0",
      `--cert-dir=${pki}`,
      `--tls-cert-file=${serving.certFile}`,
      `--tls-private-key-file=${serving.keyFile}`,
      `--client-ca-file=${ca.certFile}`,
      `--service-account-key-file=${path.join(pki, "sa.pub")}`,
      `--service-account-signing-key-file=${serviceAccountKey}`,
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      "--service-cluster-ip-range=10.0.0.0/24",
      "--authorization-mode=RBAC",
      // Pods are created without the token controller; the service account plugin would refuse them.
      "--disable-admission-plugins=ServiceAccount",
      "--allow-privileged=true",
      ...(options.watchCache === false ? ["--watch-cache=false"] : []),
      ...(options.webhookClient
        ? [`--admission-control-config-file=${writeAdmissionConfiguration(dir, options.webhookClient)}`]
        : []),
    ];
    let apiserver = startProcess(
      path.join(assets.dir, "kube-apiserver"),
      apiserverArgs,
      path.join(dir, "kube-apiserver.log"),
    );
    const controlPlane: Array<{ child: ChildProcess; exited: Promise<void> }> = [];
    const stop = async (): Promise<void> => {
      for (const process_ of controlPlane) await terminate(process_);
      await terminate(apiserver);
      await terminate(etcd);
    };

    const url = `https://127.0.0.1:${apiPort}`;
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: "e2e", server: url, caFile: ca.certFile, skipTLSVerify: false }],
      users: [{ name: "admin", certFile: admin.certFile, keyFile: admin.keyFile }],
      contexts: [{ name: "e2e", cluster: "e2e", user: "admin" }],
      currentContext: "e2e",
    });
    const kubeconfigFile = path.join(dir, "kubeconfig");
    writeFileSync(kubeconfigFile, kubeConfig.exportConfig());
    const objects = KubernetesObjectApi.makeApiClient(kubeConfig);

    const ready = async () => {
      let stopped = false;
      const exited = Promise.race([
        etcd.exited.then(() => "etcd" as const),
        apiserver.exited.then(() => "kube-apiserver" as const),
      ]).then((which) => {
        if (stopped) return;
        const log = which === "etcd" ? etcd.tail() : apiserver.tail();
        throw new EarlyExit(`${which} exited while starting; its last output:\n${log}`);
      });
      try {
        await Promise.race([
          waitFor(
            "kube-apiserver /readyz",
            async () => {
              const { status } = await fetchWithCert(`${url}/readyz`, ca.certFile, admin);
              return status === 200;
            },
            90_000,
          ).catch((err: Error) => {
            throw new Error(`${err.message}; kube-apiserver's last output:\n${apiserver.tail()}`);
          }),
          exited,
        ]);
      } finally {
        stopped = true;
      }
    };
    try {
      await ready();
    } catch (err) {
      await stop();
      if (err instanceof EarlyExit && attempt < 3) continue;
      throw err;
    }
    if (options.controllers) {
      for (const binary of ["kube-controller-manager", "kube-scheduler"])
        if (!existsSync(path.join(assets.dir, binary)))
          throw new Error(`no ${binary} in ${assets.dir}: run scripts/kube-assets.sh (npm test does)`);
      controlPlane.push(
        startProcess(
          path.join(assets.dir, "kube-controller-manager"),
          [
            `--kubeconfig=${kubeconfigFile}`,
            // EndpointSlices (discovery.k8s.io/v1beta1 on 1.20) and Endpoints: what Services' load balancers follow.
            "--controllers=deployment,replicaset,endpointslice,endpoint",
            "--leader-elect=false",
            "--port=0",
            `--secure-port=${await freePort()}`,
            "--bind-address=127.0.0.1",
            `--cert-dir=${path.join(dir, "controller-manager")}`,
          ],
          path.join(dir, "kube-controller-manager.log"),
        ),
        startProcess(
          path.join(assets.dir, "kube-scheduler"),
          [
            `--kubeconfig=${kubeconfigFile}`,
            `--authentication-kubeconfig=${kubeconfigFile}`,
            `--authorization-kubeconfig=${kubeconfigFile}`,
            "--leader-elect=false",
            "--port=0",
            `--secure-port=${await freePort()}`,
            "--bind-address=127.0.0.1",
            `--cert-dir=${path.join(dir, "scheduler")}`,
          ],
          path.join(dir, "kube-scheduler.log"),
        ),
      );
    }

    for (const file of ["kubeovn.yaml", "network-attachment-definition.yaml"]) {
      for (const crd of yamlObjects(path.join("manifests", "crds", file))) await objects.create(crd);
    }
    await waitFor(
      "CRDs established",
      async () => {
        for (const name of [
          "subnets.kubeovn.io",
          "vpcs.kubeovn.io",
          "vpc-nat-gateways.kubeovn.io",
          "network-attachment-definitions.k8s.cni.cncf.io",
        ]) {
          const crd = (await objects.read({
            apiVersion: "apiextensions.k8s.io/v1",
            kind: "CustomResourceDefinition",
            metadata: { name },
          })) as KubernetesObject & { status?: { conditions?: Array<{ type: string; status: string }> } };
          if (!crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True"))
            return false;
        }
        return true;
      },
      30_000,
    );

    return {
      kubeConfig,
      kubeconfigFile,
      objects,
      url,
      kubectl(args: string[], input?: string) {
        const kubectl = path.join(assets.dir, "kubectl");
        if (!existsSync(kubectl))
          return Promise.reject(
            new Error(`no kubectl in ${assets.dir}: run scripts/kube-assets.sh (npm test does)`),
          );
        return new Promise<string>((resolve, reject) => {
          const child = execFile(
            kubectl,
            [`--kubeconfig=${kubeconfigFile}`, ...args],
            { timeout: 60_000 },
            (err, stdout, stderr) =>
              err
                ? reject(new Error(`kubectl ${args.join(" ")}: ${stderr.trim() || err.message}`))
                : resolve(stdout),
          );
          child.stdin?.end(input ?? "");
        });
      },
      async registerWebhooks(serviceUrl: string, caFile: string) {
        const caBundle = readFileSync(caFile).toString("base64");
        for (const config of yamlObjects(path.join("manifests", "base", "webhooks.yaml"))) {
          const spec = config as KubernetesObject & {
            webhooks: Array<{ clientConfig: Record<string, unknown> }>;
          };
          delete spec.metadata?.annotations?.["cert-manager.io/inject-ca-from"];
          for (const webhook of spec.webhooks) {
            const service = webhook.clientConfig.service as { path: string };
            webhook.clientConfig = { url: `${serviceUrl}${service.path}`, caBundle };
          }
          await objects.create(spec);
        }
      },
      createSubnet(name, spec, options = {}) {
        return kubeConfig.makeApiClient(CustomObjectsApi).createClusterCustomObject({
          group: "kubeovn.io",
          version: "v1",
          plural: "subnets",
          body: { apiVersion: "kubeovn.io/v1", kind: "Subnet", metadata: { name }, spec },
          ...(options.dryRun ? { dryRun: "All" } : {}),
        });
      },
      async userKubeconfig(user: string) {
        const cert = await issueCertificate(pki, `user-${user}`, ca, {
          commonName: user,
          usage: "clientAuth",
          days: 2,
        });
        const config = new KubeConfig();
        config.loadFromOptions({
          clusters: [{ name: "e2e", server: url, caFile: ca.certFile, skipTLSVerify: false }],
          users: [{ name: user, certFile: cert.certFile, keyFile: cert.keyFile }],
          contexts: [{ name: "e2e", cluster: "e2e", user }],
          currentContext: "e2e",
        });
        const file = path.join(dir, `kubeconfig-${user}`);
        writeFileSync(file, config.exportConfig());
        return file;
      },
      async restartApiServer() {
        await terminate(apiserver);
        apiserver = startProcess(
          path.join(assets.dir, "kube-apiserver"),
          apiserverArgs,
          path.join(dir, "kube-apiserver.log"),
        );
        await ready();
      },
      async compact() {
        const post = (route: string, body: unknown) =>
          new Promise<Record<string, unknown>>((resolve, reject) => {
            const request = http.request(
              `http://127.0.0.1:${etcdPort}${route}`,
              { method: "POST" },
              (res) => {
                let text = "";
                res.on("data", (d: Buffer) => (text += d.toString()));
                res.on("end", () => resolve(JSON.parse(text) as Record<string, unknown>));
              },
            );
            request.on("error", reject);
            request.end(JSON.stringify(body));
          });
        // etcd's v3 JSON gateway: the current revision from a range read, then compact to it.
        const range = await post("/v3/kv/range", { key: Buffer.from("/").toString("base64") });
        const revision = (range.header as { revision: string }).revision;
        await post("/v3/kv/compaction", { revision, physical: true });
      },
      stop,
    };
  }
}

/** A GET with a client certificate, for health checks before the client library is useful. */
async function fetchWithCert(
  url: string,
  caFile: string,
  client: { certFile: string; keyFile: string },
): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    https
      .get(
        url,
        { ca: readFileSync(caFile), cert: readFileSync(client.certFile), key: readFileSync(client.keyFile) },
        (res) => {
          res.resume();
          res.on("end", () => resolve({ status: res.statusCode ?? 0 }));
        },
      )
      .on("error", reject);
  });
}

/** The message of an API server error (a webhook's denial reaches the client as it). */
export function apiMessage(err: unknown): string {
  if (!(err instanceof ApiException)) throw err;
  const body =
    typeof err.body === "string"
      ? (JSON.parse(err.body) as { message: string })
      : (err.body as { message: string });
  return body.message;
}

/**
 * A kubeconfig file for `user`, bound to the manifests' roles
 * (manifests/base/rbac.yaml): what the service itself may do, and no more.
 */
export async function manifestsRbacKubeconfig(kube: KubeApi, user = "ovn-admission-e2e"): Promise<string> {
  const docs = yamlObjects("manifests/base/rbac.yaml") as Array<KubernetesObject & { subjects?: unknown[] }>;
  // The service's own namespace (where its Lease role lives) exists wherever it is deployed.
  const namespaces = new Set(docs.map((d) => d.metadata?.namespace).filter((n): n is string => Boolean(n)));
  for (const name of namespaces) {
    await kube.objects
      .create({ apiVersion: "v1", kind: "Namespace", metadata: { name } })
      .catch((err: { code?: number }) => {
        if (err.code !== 409) throw err;
      });
  }
  for (const doc of docs) {
    if (doc.kind?.endsWith("Binding"))
      doc.subjects = [{ kind: "User", name: user, apiGroup: "rbac.authorization.k8s.io" }];
    await kube.objects.create(doc);
  }
  return kube.userKubeconfig(user);
}

/**
 * Nodes as kubelets report them, Ready and untainted, so kube-scheduler binds
 * pods to them: `nodes` maps a name to its InternalIP.
 */
export async function readyNodes(core: CoreV1Api, nodes: Record<string, string>): Promise<void> {
  for (const [name, address] of Object.entries(nodes)) {
    await core.createNode({ body: { metadata: { name, labels: { "kubernetes.io/hostname": name } } } });
    const node = await core.readNode({ name });
    node.status = {
      capacity: { cpu: "32", memory: "64Gi", pods: "110" },
      allocatable: { cpu: "32", memory: "64Gi", pods: "110" },
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "KubeletReady",
          message: "e2e",
          lastHeartbeatTime: new Date(),
        },
      ],
      addresses: [{ type: "InternalIP", address }],
    };
    const ready = await core.replaceNodeStatus({ name, body: node });
    // New nodes are tainted not-ready (TaintNodesByCondition); the node lifecycle controller lifts it once
    // the node reports Ready. That controller does not run here (no kubelet heartbeats), so this does.
    ready.spec = { ...ready.spec, taints: [] };
    await core.replaceNode({ name, body: ready });
  }
}
