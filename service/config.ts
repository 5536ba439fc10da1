/**
 * Configuration, validated once at start-up from flags and environment into
 * one typed object. Nothing else reads process.env or argv.
 */
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { parseRemotes } from "ovsdb-client";
import type { FailureMode } from "../webhooks/admit.js";
import { isCidr, networkOf, prefixOf } from "../domain/addresses.js";
import type { Alongside, NetworkModel, RuleSettings } from "../domain/settings.js";
import { DEFAULT_JOIN_SUBNET, OVN_CLUSTER_ROUTER } from "../domain/topology.js";

export interface Config {
  host: string;
  port: number;
  /** Serving certificate and key (the cert-manager Secret mount); unset: development certificates in certsDir. */
  tlsCertFile: string | undefined;
  tlsKeyFile: string | undefined;
  certsDir: string;
  certReloadMs: number;
  /** The service keeps its own CA and serving certificate in a Secret and the webhooks' caBundle (no cert-manager). */
  selfManagedTls: boolean;
  selfManagedTlsSecret: string;
  /** Names the serving certificate is for besides <service>.<namespace>.svc: "DNS:..." or "IP:...". */
  selfManagedTlsNames: string[];
  serviceName: string;
  /** The Mutating- and ValidatingWebhookConfiguration whose caBundle the service keeps. */
  webhookConfiguration: string;
  caValidityMs: number;
  servingValidityMs: number;
  /**
   * CA of the client certificates the API server presents to webhooks
   * (AdmissionConfiguration kubeConfigFile); set: the admission routes
   * require one it signed.
   */
  clientCaFile: string | undefined;
  /** A plain HTTP port of its own for /metrics, /healthz and /readyz; unset: only the HTTPS port serves them. */
  metricsPort: number | undefined;
  bodyLimit: number;
  deadlineMs: number;
  keepAliveTimeoutMs: number;
  mutateFailureMode: FailureMode;
  validateFailureMode: FailureMode;
  policyLabel: string;
  maxRateMbps: number;
  defaultSubnet: string;
  /** kube-ovn: Subnets are logical switches; ovn-kubernetes (seed 002): one switch per node, its subnet carved from clusterIpSubnet. */
  networkModel: NetworkModel;
  /** The control plane the service runs beside, whose rows it never writes; undefined: its own. */
  alongside: Alongside | undefined;
  clusterIpSubnet: string | undefined;
  nodeSubnetPrefix: number;
  cniPlugins: string[];
  sharedAttachmentNamespaces: string[];
  /** How to reach a node's Open_vSwitch database; {nodeIP} and {nodeName} are filled in. */
  nodeOvsdbTemplate: string;
  /** Per-node remotes that replace the template. */
  nodeOvsdbOverrides: Record<string, string>;
  /** Key, certificate and CA files for ssl: node databases. */
  nodeOvsdbSsl: { privateKey: string; certificate: string; caCertificate: string } | undefined;
  /** OVN Northbound remote(s); undefined runs a local ovsdb-server (development default). */
  northboundRemote: string | undefined;
  northboundConnectTimeoutMs: number;
  /** The cluster router that gets the gateway port and NAT rows. */
  clusterRouter: string;
  /** ovn-kubernetes: the subnet of the join switch between the cluster router and the gateway routers. */
  joinSubnet: string;
  /** The external logical switch of the gateway. */
  externalGatewaySwitch: string;
  /** The localnet port's network_name (seed 003: --external-gateway-net). */
  externalGatewayNet: string;
  /** VLAN of the external network, 0 for none (seed 003: --external-gateway-vlanid). */
  externalGatewayVlan: number;
  /** How often OVN is reconciled with the cluster view. */
  reconcileIntervalMs: number;
  /** How long a NAT row whose pod the view does not show is kept (the view may lag behind another replica). */
  natGraceMs: number;
  /** Namespace of the Lease that elects the replica which reconciles. */
  leaseNamespace: string;
  leaseDurationMs: number;
  /** Where the local Northbound keeps its database file between runs. */
  stateDir: string;
  /** Kubeconfig file of the cluster to watch; unset: in-cluster service account, else no cluster. */
  kubeconfig: string | undefined;
  /** True when running in a pod (KUBERNETES_SERVICE_HOST is set). */
  inCluster: boolean;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace";
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

interface Option<K extends keyof Config> {
  key: K;
  flag: string;
  env: string;
  describe: string;
  /** The default as --help shows it; undefined means "unset". */
  fallback: (env: NodeJS.ProcessEnv) => string | undefined;
  parse: (text: string, flag: string) => Config[K];
  /** A switch: `--flag` alone means true (and `--flag=false` false). */
  switch?: true;
}

const fail = (flag: string, expected: string, found: string): never => {
  throw new ConfigError(`--${flag}: expected ${expected}, found ${JSON.stringify(found)}`);
};
const text = (t: string): string => t;
const optionalText = (t: string): string | undefined => t;
const seconds = (t: string, flag: string): number => {
  const n = Number(t);
  if (!/^\d+(\.\d+)?$/.test(t) || n <= 0) fail(flag, "a positive number of seconds", t);
  return Math.round(n * 1000);
};
const integer =
  (min: number, max: number, unit = "") =>
  (t: string, flag: string): number => {
    const n = Number(t);
    if (!/^\d+$/.test(t) || n < min || n > max) fail(flag, `a whole number${unit} from ${min} to ${max}`, t);
    return n;
  };
const oneOf =
  <T extends string>(...values: T[]) =>
  (t: string, flag: string): T => {
    if (!values.includes(t as T)) fail(flag, `one of ${values.join(", ")}`, t);
    return t as T;
  };
const MIB = 1024 * 1024;
const bytes = (t: string, flag: string): number => {
  const m = /^(\d+)(Ki|Mi)?$/.exec(t);
  if (!m) return fail(flag, 'a size in bytes, or with Ki or Mi (e.g. "8Mi")', t);
  const n = Number(m[1]) * (m[2] === "Mi" ? MIB : m[2] === "Ki" ? 1024 : 1);
  // An AdmissionReview carries an object of up to 3 MiB, and on UPDATE the old one too.
  if (n < 3 * MIB) fail(flag, "at least 3Mi (the API server's object limit)", t);
  return n;
};

/** Every option but those derived from the environment alone. */
const OPTIONS: { [K in Exclude<keyof Config, "inCluster">]: Option<K> } = {
  host: {
    key: "host",
    flag: "host",
    env: "OVN_ADMISSION_HOST",
    describe: "address to listen on",
    fallback: () => "127.0.0.1",
    parse: text,
  },
  port: {
    key: "port",
    flag: "port",
    env: "OVN_ADMISSION_PORT",
    describe: "HTTPS port (0: any free port)",
    fallback: () => "8443",
    parse: integer(0, 65535),
  },
  tlsCertFile: {
    key: "tlsCertFile",
    flag: "tls-cert-file",
    env: "OVN_ADMISSION_TLS_CERT_FILE",
    describe: "serving certificate (PEM), e.g. the cert-manager Secret's tls.crt; reloaded when it changes",
    fallback: () => undefined,
    parse: optionalText,
  },
  tlsKeyFile: {
    key: "tlsKeyFile",
    flag: "tls-key-file",
    env: "OVN_ADMISSION_TLS_KEY_FILE",
    describe: "serving key (PEM), e.g. the cert-manager Secret's tls.key",
    fallback: () => undefined,
    parse: optionalText,
  },
  clientCaFile: {
    key: "clientCaFile",
    flag: "client-ca-file",
    env: "OVN_ADMISSION_CLIENT_CA_FILE",
    describe:
      "CA (PEM) of the client certificate the API server presents to webhooks; set, /mutate and /validate answer 401 without one it signed",
    fallback: () => undefined,
    parse: optionalText,
  },
  metricsPort: {
    key: "metricsPort",
    flag: "metrics-port",
    env: "OVN_ADMISSION_METRICS_PORT",
    describe:
      "plain HTTP port for /metrics, /healthz and /readyz (probes and Prometheus without TLS); unset: none",
    fallback: () => undefined,
    parse: (t, flag) => integer(1, 65535)(t, flag),
  },
  certsDir: {
    key: "certsDir",
    flag: "certs-dir",
    env: "OVN_ADMISSION_CERTS_DIR",
    describe: "where a development CA and serving certificate are made when no --tls-cert-file is given",
    fallback: () => "certs",
    parse: (t) => path.resolve(t),
  },
  certReloadMs: {
    key: "certReloadMs",
    flag: "cert-reload-interval",
    env: "OVN_ADMISSION_CERT_RELOAD_INTERVAL",
    describe: "seconds between checks of the certificate files",
    fallback: () => "2",
    parse: seconds,
  },
  selfManagedTls: {
    key: "selfManagedTls",
    flag: "self-managed-tls",
    env: "OVN_ADMISSION_SELF_MANAGED_TLS",
    describe:
      "keep a CA and serving certificate in a Secret of the service's namespace (made by the first replica), write the CA into the webhook configurations' caBundle and renew both; every replica reloads from the Secret (no cert-manager needed)",
    fallback: () => "false",
    parse: (t, flag) => oneOf("true", "false")(t, flag) === "true",
    switch: true,
  },
  selfManagedTlsSecret: {
    key: "selfManagedTlsSecret",
    flag: "self-managed-tls-secret",
    env: "OVN_ADMISSION_SELF_MANAGED_TLS_SECRET",
    describe:
      "the Secret (in --lease-namespace, the service's own) that holds the CA and serving certificate",
    fallback: () => "ovn-admission-self-managed-tls",
    parse: text,
  },
  selfManagedTlsNames: {
    key: "selfManagedTlsNames",
    flag: "self-managed-tls-names",
    env: "OVN_ADMISSION_SELF_MANAGED_TLS_NAMES",
    describe:
      "more names of the serving certificate, comma-separated DNS:<name> or IP:<address> (the API server reaches the service by URL)",
    fallback: () => "",
    parse: (t, flag) =>
      t
        .split(",")
        .map((n) => n.trim())
        .filter(Boolean)
        .map((n) => (/^(DNS|IP):.+$/.test(n) ? n : fail(flag, "DNS:<name> or IP:<address>", n))),
  },
  serviceName: {
    key: "serviceName",
    flag: "service-name",
    env: "OVN_ADMISSION_SERVICE_NAME",
    describe:
      "the Kubernetes Service in front of the webhooks (the serving certificate's <name>.<namespace>.svc)",
    fallback: () => "ovn-admission",
    parse: text,
  },
  webhookConfiguration: {
    key: "webhookConfiguration",
    flag: "webhook-configuration",
    env: "OVN_ADMISSION_WEBHOOK_CONFIGURATION",
    describe:
      "name of the Mutating- and ValidatingWebhookConfiguration whose caBundle --self-managed-tls keeps",
    fallback: () => "ovn-admission",
    parse: text,
  },
  caValidityMs: {
    key: "caValidityMs",
    flag: "self-managed-ca-validity",
    env: "OVN_ADMISSION_SELF_MANAGED_CA_VALIDITY",
    describe:
      "seconds a self-managed CA lives; a new one is added to caBundle when half is left and signs once published",
    fallback: () => String(5 * 365 * 86_400),
    parse: seconds,
  },
  servingValidityMs: {
    key: "servingValidityMs",
    flag: "self-managed-cert-validity",
    env: "OVN_ADMISSION_SELF_MANAGED_CERT_VALIDITY",
    describe: "seconds a self-managed serving certificate lives; renewed when a third is left",
    fallback: () => String(90 * 86_400),
    parse: seconds,
  },
  bodyLimit: {
    key: "bodyLimit",
    flag: "body-limit",
    env: "OVN_ADMISSION_BODY_LIMIT",
    describe: "largest request body",
    fallback: () => "8Mi",
    parse: bytes,
  },
  deadlineMs: {
    key: "deadlineMs",
    flag: "admission-deadline",
    env: "OVN_ADMISSION_DEADLINE",
    describe: "seconds an admission may take; keep it below the webhooks' timeoutSeconds",
    fallback: () => "2",
    parse: seconds,
  },
  keepAliveTimeoutMs: {
    key: "keepAliveTimeoutMs",
    flag: "keep-alive-timeout",
    env: "OVN_ADMISSION_KEEP_ALIVE_TIMEOUT",
    describe: "seconds an idle connection is kept open (the API server reuses them; at least 90)",
    fallback: () => "120",
    parse: (t, flag) => {
      const ms = seconds(t, flag);
      if (ms < 90_000) fail(flag, "at least 90 seconds", t);
      return ms;
    },
  },
  mutateFailureMode: {
    key: "mutateFailureMode",
    flag: "mutate-failure-mode",
    env: "OVN_ADMISSION_MUTATE_FAILURE_MODE",
    describe: "when OVN cannot be programmed in time on /mutate: deny, or allow with a warning",
    fallback: () => "deny",
    parse: oneOf<FailureMode>("deny", "allow"),
  },
  validateFailureMode: {
    key: "validateFailureMode",
    flag: "validate-failure-mode",
    env: "OVN_ADMISSION_VALIDATE_FAILURE_MODE",
    describe: "the same for /validate",
    fallback: () => "deny",
    parse: oneOf<FailureMode>("deny", "allow"),
  },
  policyLabel: {
    key: "policyLabel",
    flag: "policy-label",
    env: "OVN_ADMISSION_POLICY_LABEL",
    describe: "Namespace label choosing enforce, warn or off",
    fallback: () => "ovn-admission.io/policy",
    parse: text,
  },
  maxRateMbps: {
    key: "maxRateMbps",
    flag: "max-rate",
    env: "OVN_ADMISSION_MAX_RATE",
    describe: "largest ingress_rate/egress_rate a pod may ask for, Mbit/s",
    fallback: () => "100000",
    parse: integer(1, 10_000_000, " of Mbit/s"),
  },
  defaultSubnet: {
    key: "defaultSubnet",
    flag: "default-subnet",
    env: "OVN_ADMISSION_DEFAULT_SUBNET",
    describe: "subnet of pods that name none and whose namespace no subnet claims",
    fallback: () => "ovn-default",
    parse: text,
  },
  networkModel: {
    key: "networkModel",
    flag: "network-model",
    env: "OVN_ADMISSION_NETWORK_MODEL",
    describe:
      "kube-ovn (Subnets are logical switches, ports <pod>.<namespace>) or ovn-kubernetes (seed 002: one logical switch per node, ports <namespace>_<pod>)",
    fallback: () => "kube-ovn",
    parse: oneOf<NetworkModel>("kube-ovn", "ovn-kubernetes"),
  },
  alongside: {
    key: "alongside",
    flag: "alongside",
    env: "OVN_ADMISSION_ALONGSIDE",
    describe:
      "kube-ovn: beside a running kube-ovn-controller and kube-ovn-daemon, decide, inject and claim only (claims on the service's own router and switch; no switch, port, NAT, gateway or encap write of Kube-OVN's); unset: the service programs what it admits",
    fallback: () => undefined,
    parse: oneOf<Alongside>("kube-ovn"),
  },
  clusterIpSubnet: {
    key: "clusterIpSubnet",
    flag: "cluster-ip-subnet",
    env: "OVN_ADMISSION_CLUSTER_IP_SUBNET",
    describe: "ovn-kubernetes: the pod network node subnets are carved from (seed 002: 192.168.0.0/16)",
    fallback: () => undefined,
    parse: (t, flag) =>
      isCidr(t) && t === networkOf(t) ? t : fail(flag, "a network in CIDR notation (e.g. 192.168.0.0/16)", t),
  },
  nodeSubnetPrefix: {
    key: "nodeSubnetPrefix",
    flag: "node-subnet-prefix",
    env: "OVN_ADMISSION_NODE_SUBNET_PREFIX",
    describe: "ovn-kubernetes: the prefix length of each node's subnet (seed 002: 24)",
    fallback: () => "24",
    parse: integer(1, 127),
  },
  cniPlugins: {
    key: "cniPlugins",
    flag: "cni-plugins",
    env: "OVN_ADMISSION_CNI_PLUGINS",
    describe: "CNI and IPAM plugins a NetworkAttachmentDefinition may use, comma-separated",
    fallback: () => "kube-ovn,ipvlan,macvlan,bridge,portmap,sbr,tuning,host-local,static,whereabouts",
    parse: (t) =>
      t
        .split(",")
        .map((p) => p.trim())
        .filter(Boolean),
  },
  sharedAttachmentNamespaces: {
    key: "sharedAttachmentNamespaces",
    flag: "shared-attachment-namespaces",
    env: "OVN_ADMISSION_SHARED_ATTACHMENT_NAMESPACES",
    describe:
      "namespaces whose NetworkAttachmentDefinitions pods of every namespace may use (also: label ovn-admission.io/shared-attachments=true on the Namespace)",
    fallback: () => "",
    parse: (t) =>
      t
        .split(",")
        .map((p) => p.trim())
        .filter(Boolean),
  },
  nodeOvsdbTemplate: {
    key: "nodeOvsdbTemplate",
    flag: "node-ovsdb-remote",
    env: "OVN_ADMISSION_NODE_OVSDB_REMOTE",
    describe: "a node's Open_vSwitch database: a remote with {nodeIP} and {nodeName} filled in per node",
    fallback: () => "tcp:{nodeIP}:6640",
    parse: (t, flag) => {
      try {
        parseRemotes(t.replaceAll("{nodeIP}", "192.0.2.1").replaceAll("{nodeName}", "node"));
      } catch (err) {
        throw new ConfigError(`--${flag}: ${(err as Error).message}`);
      }
      return t;
    },
  },
  nodeOvsdbOverrides: {
    key: "nodeOvsdbOverrides",
    flag: "node-ovsdb-override",
    env: "OVN_ADMISSION_NODE_OVSDB_OVERRIDE",
    describe:
      "per-node remotes replacing the template, as node=remote entries separated by ';' (e.g. node-1=tcp:10.0.0.5:6640;node-2=unix:/run/openvswitch/db.sock)",
    fallback: () => "",
    parse: (t, flag) => {
      const overrides: Record<string, string> = {};
      for (const entry of t
        .split(";")
        .map((e) => e.trim())
        .filter(Boolean)) {
        const at = entry.indexOf("=");
        if (at <= 0) fail(flag, "node=remote entries separated by ';'", entry);
        const remote = entry.slice(at + 1);
        try {
          parseRemotes(remote);
        } catch (err) {
          throw new ConfigError(`--${flag}: node ${entry.slice(0, at)}: ${(err as Error).message}`);
        }
        overrides[entry.slice(0, at)] = remote;
      }
      return overrides;
    },
  },
  nodeOvsdbSsl: {
    key: "nodeOvsdbSsl",
    flag: "node-ovsdb-ssl",
    env: "OVN_ADMISSION_NODE_OVSDB_SSL",
    describe: "key, certificate and CA files for ssl: node databases, as KEY,CERT,CA",
    fallback: () => undefined,
    parse: (t, flag) => {
      const [privateKey, certificate, caCertificate, ...rest] = t.split(",");
      if (!privateKey || !certificate || !caCertificate || rest.length)
        fail(flag, "three files KEY,CERT,CA", t);
      return {
        privateKey: path.resolve(privateKey as string),
        certificate: path.resolve(certificate as string),
        caCertificate: path.resolve(caCertificate as string),
      };
    },
  },
  northboundRemote: {
    key: "northboundRemote",
    flag: "nb-remote",
    env: "OVN_NB_REMOTE",
    describe:
      "OVN Northbound: unix:PATH, tcp:HOST:PORT, ssl:HOST:PORT, or a comma-separated RAFT cluster (unset: a local ovsdb-server started with the service)",
    fallback: () => undefined,
    parse: (t, flag) => {
      try {
        parseRemotes(t);
      } catch (err) {
        throw new ConfigError(`--${flag}: ${(err as Error).message}`);
      }
      return t;
    },
  },
  northboundConnectTimeoutMs: {
    key: "northboundConnectTimeoutMs",
    flag: "nb-connect-timeout",
    env: "OVN_NB_CONNECT_TIMEOUT",
    describe: "seconds to wait for OVN Northbound at start-up",
    fallback: () => "15",
    parse: seconds,
  },
  clusterRouter: {
    key: "clusterRouter",
    flag: "cluster-router",
    env: "OVN_ADMISSION_CLUSTER_ROUTER",
    describe:
      "the cluster's logical router: gets the external gateway port and the pods' NAT rows (default ovn-cluster, Kube-OVN's; ovn_cluster_router in the ovn-kubernetes model, made by the service)",
    fallback: () => undefined,
    parse: text,
  },
  joinSubnet: {
    key: "joinSubnet",
    flag: "join-subnet",
    env: "OVN_ADMISSION_JOIN_SUBNET",
    describe: "ovn-kubernetes: the join switch's subnet, between the cluster router and the gateway routers",
    fallback: () => DEFAULT_JOIN_SUBNET,
    parse: (t, flag) =>
      isCidr(t) && t === networkOf(t) && !t.includes(":")
        ? t
        : fail(flag, "an IPv4 network in CIDR notation (e.g. 100.64.0.0/16)", t),
  },
  externalGatewaySwitch: {
    key: "externalGatewaySwitch",
    flag: "external-gateway-switch",
    env: "OVN_ADMISSION_EXTERNAL_GATEWAY_SWITCH",
    describe: "the external gateway's logical switch",
    fallback: () => "external",
    parse: text,
  },
  externalGatewayNet: {
    key: "externalGatewayNet",
    flag: "external-gateway-net",
    env: "OVN_ADMISSION_EXTERNAL_GATEWAY_NET",
    describe: "network name of the external switch's localnet port (the bridge mapping of the gateway NIC)",
    fallback: () => "external",
    parse: text,
  },
  externalGatewayVlan: {
    key: "externalGatewayVlan",
    flag: "external-gateway-vlanid",
    env: "OVN_ADMISSION_EXTERNAL_GATEWAY_VLANID",
    describe: "VLAN tag of the external network (0: none)",
    fallback: () => "0",
    parse: integer(0, 4094),
  },
  reconcileIntervalMs: {
    key: "reconcileIntervalMs",
    flag: "reconcile-interval",
    env: "OVN_ADMISSION_RECONCILE_INTERVAL",
    describe: "seconds between reconciles of OVN with the cluster (gateway, NAT rows of deleted pods)",
    fallback: () => "30",
    parse: seconds,
  },
  natGraceMs: {
    key: "natGraceMs",
    flag: "nat-release-grace",
    env: "OVN_ADMISSION_NAT_RELEASE_GRACE",
    describe: "seconds a new NAT row is kept when the cluster view does not show its pod yet",
    fallback: () => "60",
    parse: seconds,
  },
  leaseNamespace: {
    key: "leaseNamespace",
    flag: "lease-namespace",
    env: "POD_NAMESPACE",
    describe: "namespace of the Lease ovn-admission-reconciler that elects the one replica that reconciles",
    fallback: () => "ovn-admission",
    parse: text,
  },
  leaseDurationMs: {
    key: "leaseDurationMs",
    flag: "lease-duration",
    env: "OVN_ADMISSION_LEASE_DURATION",
    describe: "seconds another replica waits before taking over from a leader that stopped renewing",
    fallback: () => "15",
    parse: seconds,
  },
  stateDir: {
    key: "stateDir",
    flag: "state-dir",
    env: "OVN_ADMISSION_STATE_DIR",
    describe: "directory of the local Northbound's database file",
    fallback: (env) =>
      path.join(env.XDG_STATE_HOME || path.join(os.homedir(), ".local", "state"), "ovn-admission"),
    parse: (t) => path.resolve(t),
  },
  kubeconfig: {
    key: "kubeconfig",
    flag: "kubeconfig",
    env: "KUBECONFIG",
    describe:
      "kubeconfig of the cluster to watch (in a pod: its service account; with neither, the cluster view stays empty)",
    fallback: () => undefined,
    parse: (t) => path.resolve(t),
  },
  logLevel: {
    key: "logLevel",
    flag: "log-level",
    env: "LOG_LEVEL",
    describe: "log level",
    fallback: () => "info",
    parse: oneOf("fatal", "error", "warn", "info", "debug", "trace"),
  },
};

export function usage(env: NodeJS.ProcessEnv = {}): string {
  const lines = [
    "Usage: ovn-admission [options]",
    "",
    "Options (each also read from the environment variable shown):",
  ];
  for (const o of Object.values(OPTIONS) as Array<Option<keyof Config>>) {
    lines.push(
      `  --${o.flag}${o.switch ? "" : " <value>"}   ${o.env}`,
      `      ${o.describe}`,
      `      default: ${o.fallback(env) ?? "unset"}`,
    );
  }
  lines.push("  --help", "      print this help and exit");
  return lines.join("\n");
}

/** Flags first, then environment, then defaults. Throws ConfigError naming the option. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): Config | "help" {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        help: { type: "boolean" },
        ...Object.fromEntries(
          Object.values(OPTIONS).map((o) => [
            o.flag,
            { type: (o as Option<keyof Config>).switch ? ("boolean" as const) : ("string" as const) },
          ]),
        ),
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\n\n${usage(env)}`);
  }
  if (values.help) return "help";
  const config: Partial<Record<keyof Config, unknown>> = {};
  for (const o of Object.values(OPTIONS) as Array<Option<keyof Config>>) {
    const flagged = values[o.flag];
    const raw =
      typeof flagged === "string" || typeof flagged === "boolean"
        ? String(flagged)
        : env[o.env] || o.fallback(env);
    config[o.key] = raw === undefined ? undefined : o.parse(raw, o.flag);
  }
  const done = config as Config;
  // Kubernetes sets this in every pod.
  done.inCluster = Boolean(env.KUBERNETES_SERVICE_HOST);
  // ovn-kubernetes names its distributed router ovn_cluster_router; Kube-OVN, ovn-cluster.
  done.clusterRouter ??= done.networkModel === "ovn-kubernetes" ? OVN_CLUSTER_ROUTER : "ovn-cluster";
  if (done.networkModel === "ovn-kubernetes") {
    if (!done.clusterIpSubnet)
      throw new ConfigError("--network-model ovn-kubernetes needs --cluster-ip-subnet (e.g. 192.168.0.0/16)");
    const clusterPrefix = Number(prefixOf(done.clusterIpSubnet));
    const bits = done.clusterIpSubnet.includes(":") ? 128 : 32;
    if (done.nodeSubnetPrefix <= clusterPrefix || done.nodeSubnetPrefix > bits - 2)
      throw new ConfigError(
        `--node-subnet-prefix: expected a prefix longer than --cluster-ip-subnet's /${clusterPrefix} and at most /${bits - 2}, found ${done.nodeSubnetPrefix}`,
      );
  }
  if (done.alongside === "kube-ovn" && done.networkModel !== "kube-ovn")
    throw new ConfigError(
      `--alongside kube-ovn needs --network-model kube-ovn (Kube-OVN's names), found --network-model ${done.networkModel}`,
    );
  if (done.selfManagedTls && done.tlsCertFile)
    throw new ConfigError(
      "--self-managed-tls and --tls-cert-file exclude each other: the service makes its own certificate, or serves the one given",
    );
  if (done.selfManagedTls && done.servingValidityMs * 2 > done.caValidityMs)
    throw new ConfigError(
      "--self-managed-cert-validity: expected at most half of --self-managed-ca-validity, so a CA outlives what it signed",
    );
  if ((done.tlsCertFile === undefined) !== (done.tlsKeyFile === undefined)) {
    throw new ConfigError(
      "--tls-cert-file and --tls-key-file go together: give both, or neither for development certificates",
    );
  }
  return done;
}

/** What the rules read of the configuration. */
export function ruleSettings(config: Config): RuleSettings {
  return {
    maxRateMbps: config.maxRateMbps,
    defaultSubnet: config.defaultSubnet,
    networkModel: config.networkModel,
    cniPlugins: config.cniPlugins,
    sharedAttachmentNamespaces: config.sharedAttachmentNamespaces,
  };
}

/** The configuration with every default (tests, tools). */
export function defaultConfig(): Config {
  const config = loadConfig([], {});
  if (config === "help") throw new ConfigError("unexpected --help");
  return config;
}
