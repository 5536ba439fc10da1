/**
 * `ovn-admission check`: the webhooks' rules before merge. Manifests are read
 * (files, directories, stdin), put in the order `kubectl apply` would create
 * them, and each object goes through the same route, policy and rule as an
 * AdmissionReview would, as a dryRun: nothing is written anywhere. The view
 * is the live cluster (read-only) and/or a state directory, plus every object
 * of the files admitted before it; workloads are judged by their pod
 * template.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import jsonPatch, { type Operation } from "fast-json-patch";
import { KubernetesObjectApi, type KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { LineCounter, parseAllDocuments } from "yaml";
import { OvsdbClient } from "ovsdb-client";
import { apiStatusOf } from "../cluster/api-status.js";
import { findCluster, startInformers } from "../cluster/informers.js";
import { ClusterState } from "../cluster/state.js";
import { isKind, isServiceKind, KIND_RESOURCES, KINDS } from "../domain/kinds.js";
import { IntentHandlers, type IntentHandler } from "../ovn/intent-runner.js";
import { PortHandler } from "../ovn/ports.js";
import { NB } from "../ovn/rows.js";
import { ConfigError, loadConfig, ruleSettings, type Config } from "../service/config.js";
import { admit } from "../webhooks/admit.js";
import type { AdmissionRequest } from "../webhooks/envelope.js";
import type { KubeObject } from "../domain/kube.js";
import { ROUTES } from "../webhooks/routes.js";
import type { PortClaim } from "../domain/port-claims.js";

/** An object as read, and where: FILE:LINE in every message about it. */
export interface Located {
  file: string;
  line: number;
  object: KubeObject;
}

export class ManifestError extends Error {
  override name = "ManifestError";
}

const WORKLOADS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"]);

/** kubectl apply's order: namespaces, definitions, nodes, network objects, config, then pods and workloads. */
function rank(kind: string): number {
  if (kind === "Namespace") return 0;
  if (kind === "CustomResourceDefinition") return 1;
  // Nodes before the network objects: a Subnet's nodeNetwork names a plane a Node of the same files declares.
  if (kind === "Node") return 2;
  if (["Vpc", "Subnet", "VpcNatGateway", "NetworkAttachmentDefinition"].includes(kind)) return 3;
  if (kind === "ConfigMap") return 4;
  if (kind === "Pod" || WORKLOADS.has(kind)) return 6;
  return 5;
}

export function applyOrder(objects: readonly Located[]): Located[] {
  return objects
    .map((o, i) => ({ o, i }))
    .sort((a, b) => rank(String(a.o.object.kind)) - rank(String(b.o.object.kind)) || a.i - b.i)
    .map(({ o }) => o);
}

/** The objects of one YAML or JSON text (a `List` gives its items); a YAML error names the line. */
export function readManifests(text: string, file: string): Located[] {
  const lines = new LineCounter();
  const found: Located[] = [];
  for (const doc of parseAllDocuments(text, { lineCounter: lines })) {
    const [error] = doc.errors;
    if (error)
      throw new ManifestError(
        `${file}:${lines.linePos(error.pos[0]).line}: YAML error: ${error.message.split("\n")[0]}`,
      );
    const object = doc.toJS() as KubeObject | null;
    if (object === null || object === undefined) continue;
    const line = lines.linePos(doc.contents?.range?.[0] ?? 0).line;
    if (typeof object !== "object" || Array.isArray(object) || typeof object.kind !== "string")
      throw new ManifestError(`${file}:${line}: not a Kubernetes object (expected a mapping with kind)`);
    if (object.kind === "List" || object.kind.endsWith("List")) {
      for (const item of (object.items as KubeObject[] | undefined) ?? [])
        found.push({ file, line, object: item });
      continue;
    }
    if (!object.metadata?.name && !object.metadata?.generateName)
      throw new ManifestError(`${file}:${line}: ${object.kind} without metadata.name`);
    found.push({ file, line, object });
  }
  return found;
}

/** Every manifest file under a directory, in name order. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const at = path.join(dir, name);
      if (statSync(at).isDirectory()) return filesUnder(at);
      return /\.(ya?ml|json)$/.test(name) ? [at] : [];
    });
}

export function readSources(sources: readonly string[], stdin: () => string): Located[] {
  return sources.flatMap((source) => {
    if (source === "-") return readManifests(stdin(), "<stdin>");
    let files: string[];
    try {
      files = statSync(source).isDirectory() ? filesUnder(source) : [source];
    } catch (err) {
      throw new ManifestError(`${source}: cannot read: ${(err as Error).message}`);
    }
    return files.flatMap((file) => readManifests(readFileSync(file, "utf8"), file));
  });
}

/** The pod a workload would make, named after it. */
export function podOfWorkload(object: KubeObject): KubeObject | undefined {
  const spec = object.spec as Record<string, unknown> | undefined;
  const template = (
    object.kind === "CronJob"
      ? (
          (spec?.jobTemplate as Record<string, unknown> | undefined)?.spec as
            Record<string, unknown> | undefined
        )?.template
      : spec?.template
  ) as { metadata?: KubeObject["metadata"]; spec?: unknown } | undefined;
  if (!template?.spec) return undefined;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      ...template.metadata,
      name: `${object.metadata?.name ?? "workload"}-template`,
      namespace: object.metadata?.namespace ?? "default",
    },
    spec: template.spec,
  };
}

export interface Finding {
  file: string;
  line: number;
  /** kind/namespace/name (kind/name when cluster-scoped), as the output prints it. */
  object: string;
  verdict: "allowed" | "denied" | "skipped";
  message?: string;
  /** For a denial: every violation, each printed on its own line. */
  violations?: string[];
  warnings: string[];
  patch: Operation[];
}

const CLUSTER_SCOPED = new Set(["Namespace", "Node", "Subnet", "Vpc", "VpcNatGateway"]);

function nameOf(object: KubeObject, kind = String(object.kind)): string {
  const name = object.metadata?.name ?? object.metadata?.generateName ?? "";
  return CLUSTER_SCOPED.has(kind)
    ? `${kind.toLowerCase()}/${name}`
    : `${kind.toLowerCase()}/${object.metadata?.namespace ?? "default"}/${name}`;
}

export interface CheckDeps {
  view: ClusterState;
  config: Config;
  handlers: IntentHandlers;
  /** The live object, for an UPDATE (with --kubeconfig); undefined: a CREATE. */
  live?: (object: KubeObject) => Promise<KubeObject | undefined>;
}

/** Judges every object in apply order; each admitted one joins the view for those after it. */
export async function check(objects: readonly Located[], deps: CheckDeps): Promise<Finding[]> {
  const findings: Finding[] = [];
  // The same for every object: the webhooks' routes on the view, as dryRuns answered in full.
  const admitDeps = {
    routes: ROUTES,
    view: deps.view,
    settings: ruleSettings(deps.config),
    handlers: deps.handlers,
    policyLabel: deps.config.policyLabel,
    deadlineMs: 30_000,
    failureModes: { mutate: "deny", validate: "deny" } as const,
  };
  // Objects of the files already admitted: the same object again is an UPDATE of it, as kubectl apply makes it.
  const applied = new Map<string, KubeObject>();
  let uid = 0;
  for (const { file, line, object: given } of applyOrder(objects)) {
    const kind = String(given.kind);
    const judged = WORKLOADS.has(kind) ? podOfWorkload(given) : given;
    const label = nameOf(given);
    const judgedKind = String(judged?.kind);
    // Services and their endpoints are watched (ovn-kubernetes model), never judged.
    const resource =
      judged && isKind(judgedKind) && !isServiceKind(judgedKind) ? KIND_RESOURCES[judgedKind] : undefined;
    if (!judged || !resource) {
      findings.push({
        file,
        line,
        object: label,
        verdict: "skipped",
        message: `no webhook judges ${kind}`,
        warnings: [],
        patch: [],
      });
      continue;
    }
    const object: KubeObject = structuredClone(judged);
    if (!CLUSTER_SCOPED.has(String(judged.kind)))
      object.metadata = { ...object.metadata, namespace: object.metadata?.namespace ?? "default" };
    const key = `${String(judged.kind)}/${object.metadata?.namespace ?? ""}/${object.metadata?.name ?? ""}`;
    const old = applied.get(key) ?? (deps.live && !WORKLOADS.has(kind) ? await deps.live(object) : undefined);
    const request = (operation: "CREATE" | "UPDATE", body: KubeObject): AdmissionRequest => ({
      uid: `check-${++uid}`,
      kind: { group: resource.group, version: resource.version, kind: String(judged.kind) },
      resource: { group: resource.group, version: resource.version, resource: resource.resource },
      subResource: "",
      name: body.metadata?.name ?? "",
      namespace: CLUSTER_SCOPED.has(String(judged.kind)) ? "" : (body.metadata?.namespace ?? "default"),
      operation,
      userInfo: { username: "ovn-admission-check" },
      object: body,
      oldObject: old ?? null,
      dryRun: true,
    });
    const operation = old ? "UPDATE" : "CREATE";
    const mutated = await admit(
      "mutate",
      { apiVersion: "admission.k8s.io/v1", request: request(operation, object) },
      admitDeps,
    );
    const warnings = [...(mutated.response.warnings ?? [])];
    const patch = mutated.response.patch
      ? (JSON.parse(Buffer.from(mutated.response.patch, "base64").toString()) as Operation[])
      : [];
    let verdict: Finding["verdict"] = "allowed";
    let message: string | undefined;
    let violations: string[] | undefined;
    let stored = object;
    if (!mutated.response.allowed) {
      verdict = "denied";
      message = mutated.response.status?.message;
      violations = mutated.violations;
    } else {
      stored = patch.length
        ? (jsonPatch.applyPatch(structuredClone(object), patch, false, false).newDocument as KubeObject)
        : object;
      const validated = await admit(
        "validate",
        { apiVersion: "admission.k8s.io/v1", request: request(operation, stored) },
        admitDeps,
      );
      warnings.push(...(validated.response.warnings ?? []));
      if (!validated.response.allowed) {
        verdict = "denied";
        message = validated.response.status?.message;
        violations = validated.violations;
      }
    }
    findings.push({
      file,
      line,
      object: label,
      verdict,
      ...(message ? { message } : {}),
      ...(violations ? { violations } : {}),
      warnings,
      patch,
    });
    // What the API server would store is what later objects see; a workload's template makes no pod now.
    if (verdict === "allowed" && isKind(kind)) {
      deps.view.apply(kind, old ? "MODIFIED" : "ADDED", stored);
      applied.set(key, stored);
    }
  }
  return findings;
}

export function formatText(findings: readonly Finding[], showPatches: boolean): string {
  const lines: string[] = [];
  for (const f of findings) {
    const at = `${f.file}:${f.line} ${f.object}`;
    if (f.verdict === "denied")
      for (const violation of f.violations ?? [f.message ?? "denied"])
        lines.push(`${at}: denied: ${violation}`);
    for (const w of f.warnings) lines.push(`${at}: warning: ${w}`);
    if (showPatches && f.patch.length) lines.push(`${at}: patch: ${JSON.stringify(f.patch)}`);
  }
  const count = (v: Finding["verdict"]) => findings.filter((f) => f.verdict === v).length;
  lines.push(
    `check: ${findings.length} objects: ${count("allowed")} allowed, ${count("denied")} denied, ${count("skipped")} not judged by any webhook`,
  );
  return `${lines.join("\n")}\n`;
}

const USAGE = `Usage: ovn-admission check -f FILE|DIR|- [-f ...] [--kubeconfig K | --state DIR] [-o text|json] [--show-patches] [--nb-remote R] [service options]

Runs every object through the webhooks' rules as a dryRun and prints what
the API server would answer: FILE:LINE kind/namespace/name: denied: ...
Exit 1 when something would be denied, 2 on unreadable input, 0 otherwise.

  -f, --filename     a manifest file, a directory of them, or - for stdin (repeatable)
  --kubeconfig       judge against the live cluster (read-only: list, watch, get)
  --state            a directory of manifests already in the cluster (kubectl get -o yaml), loaded unjudged
  -o, --output       text (default) or json
  --show-patches     print the JSON Patch the mutating webhook would apply
  --nb-remote        check asked-for addresses against OVN Northbound (read-only monitor); without it they are skipped
Service options (--network-model, --default-subnet, --policy-label, ...) are read as the service reads them.`;

/** Address claims without the Northbound: skipped, and said so. */
const skipped: IntentHandler = async (intent) => ({
  warnings: [`${intent.kind} for ${intent.owner} not checked: needs OVN Northbound (--nb-remote)`],
});

/** Runs the command; answers the exit code. Never writes to a cluster or a database. */
export async function runCheck(
  argv: string[],
  env: NodeJS.ProcessEnv,
  out: (text: string) => void,
  err: (text: string) => void,
  stdin: () => string = () => readFileSync(0, "utf8"),
): Promise<number> {
  // The command's own options; every other one is a service option, read by the service's own parser.
  const values: { filename: string[]; state?: string; output: string; showPatches: boolean; help: boolean } =
    {
      filename: [],
      output: "text",
      showPatches: false,
      help: false,
    };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [flag, inline] =
      arg.startsWith("--") && arg.includes("=")
        ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
        : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new ManifestError(`${flag} needs a value`);
      return v;
    };
    try {
      if (flag === "-f" || flag === "--filename") values.filename.push(value());
      else if (flag === "--state") values.state = value();
      else if (flag === "-o" || flag === "--output") values.output = value();
      else if (flag === "--show-patches") values.showPatches = true;
      else if (flag === "-h" || flag === "--help") values.help = true;
      else rest.push(arg);
    } catch (e) {
      err(`ovn-admission check: ${(e as Error).message}\n${USAGE}\n`);
      return 2;
    }
  }
  if (values.help) {
    out(`${USAGE}\n`);
    return 0;
  }
  if (!values.filename.length) {
    err(`ovn-admission check: -f is required\n${USAGE}\n`);
    return 2;
  }
  if (values.output !== "text" && values.output !== "json") {
    err(`ovn-admission check: -o: expected text or json, found ${JSON.stringify(values.output)}\n`);
    return 2;
  }
  let config: Config;
  let objects: Located[];
  let state: Located[] = [];
  try {
    const loaded = loadConfig(rest, {});
    if (loaded === "help") return 0;
    config = loaded;
    objects = readSources(values.filename, stdin);
    if (values.state) state = readSources([values.state], stdin);
  } catch (e) {
    if (e instanceof ManifestError || e instanceof ConfigError) {
      err(`ovn-admission check: ${e.message}\n`);
      return 2;
    }
    throw e;
  }

  const log = pino({ level: "silent" });
  let view = new ClusterState();
  let kubeConfig: KubeConfig | undefined;
  const cleanup: Array<() => void> = [];
  try {
    if (config.kubeconfig) {
      kubeConfig = findCluster(config.kubeconfig, false)?.kubeConfig;
      if (kubeConfig) {
        const informers = startInformers(kubeConfig, log);
        cleanup.push(() => informers.stop());
        await Promise.race([
          informers.synced,
          new Promise((_, reject) =>
            setTimeout(() => reject(new Error("the cluster view did not sync within 30 s")), 30_000).unref(),
          ),
        ]);
        view = informers.state;
      }
    }
    if (values.state) {
      // The state directory is the cluster, as far as the rules go: a kind it has none of has none.
      for (const kind of KINDS)
        view.replace(
          kind,
          state.filter((o) => o.object.kind === kind).map((o) => o.object),
        );
    }
    const handlers: Record<string, IntentHandler> = { "port-claim": skipped, "node-subnet": skipped };
    if (config.northboundRemote) {
      const northbound = new OvsdbClient({ remote: config.northboundRemote, database: NB });
      cleanup.push(() => northbound.close());
      await northbound.connect({ timeoutMs: 10_000 });
      // Read-only: a monitor of the ports, and claims on dryRun, which write nothing.
      const ports = new PortHandler(northbound, log);
      handlers["port-claim"] = (intent) => ports.claim(intent.spec as PortClaim, true);
    }
    const live = kubeConfig
      ? (() => {
          const api = KubernetesObjectApi.makeApiClient(kubeConfig);
          return async (object: KubeObject): Promise<KubeObject | undefined> => {
            try {
              return (await api.read({
                apiVersion: String(object.apiVersion),
                kind: String(object.kind),
                metadata: { name: object.metadata?.name ?? "", namespace: object.metadata?.namespace },
              })) as KubeObject;
            } catch (e) {
              const status = apiStatusOf(e);
              if (status === 404) return undefined;
              // Read as absent, an object that exists would be judged as a CREATE: a wrong verdict, said as right.
              const name = [object.metadata?.namespace, object.metadata?.name].filter(Boolean).join("/");
              throw new Error(
                `cannot read ${String(object.kind)} ${name} from the cluster (${status ? `HTTP ${status}` : (e as Error).message}): ` +
                  "check judges an object that exists as the UPDATE kubectl apply would send, so --kubeconfig needs get on what it checks",
              );
            }
          };
        })()
      : undefined;
    const findings = await check(objects, {
      view,
      config,
      handlers: new IntentHandlers(handlers),
      ...(live ? { live } : {}),
    });
    out(
      values.output === "json"
        ? `${JSON.stringify({ findings }, null, 2)}\n`
        : formatText(findings, values.showPatches) +
            (config.kubeconfig || values.state
              ? ""
              : "check: no --kubeconfig or --state: what the files name but do not hold (nodes, subnets, NADs) was not checked\n"),
    );
    return findings.some((f) => f.verdict === "denied") ? 1 : 0;
  } catch (e) {
    err(`ovn-admission check: ${(e as Error).message}\n`);
    return 2;
  } finally {
    for (const stop of cleanup) stop();
  }
}
