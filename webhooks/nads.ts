/**
 * Rules for NetworkAttachmentDefinitions (k8s.cni.cncf.io/v1): the CNI config
 * parses, every plugin is allowed, kube-ovn, ipvlan and macvlan have what they
 * need, IPAM ranges are networks, and the node selector annotation is labels.
 */
import type { ClusterView } from "../domain/view.js";
import { cidrContains, cidrsOverlap, isCidr, isIpAddress } from "../domain/addresses.js";
import { annotationField, annotationsOf, NAD_NODE_SELECTOR } from "../domain/annotations.js";
import { interfaceNameProblem, parseNodeSelector } from "../domain/attachments.js";
import type { AdmissionRequest } from "./envelope.js";
import type { RuleSettings } from "../domain/settings.js";
import { allow, refuse, type Verdict } from "./verdict.js";
import { forbidden, malformed, type Violation } from "../domain/violations.js";

const MODES: Record<string, readonly string[]> = {
  ipvlan: ["l2", "l3", "l3s"],
  macvlan: ["bridge", "private", "vepa", "passthru"],
};

type Plugin = Record<string, unknown> & { type?: unknown };

/** The plugins of a config: its `plugins` chain, or the config itself. */
function pluginsOf(config: Record<string, unknown>): Plugin[] {
  return Array.isArray(config.plugins) ? (config.plugins as Plugin[]) : [config as Plugin];
}

function checkIpam(ipam: unknown, where: string): string | undefined {
  if (ipam === undefined) return undefined;
  if (typeof ipam !== "object" || ipam === null)
    return `${where}.ipam: expected an object, found ${JSON.stringify(ipam)}`;
  const i = ipam as Record<string, unknown>;
  const ranges: Array<{ at: string; subnet: unknown; gateway?: unknown }> = [];
  if (i.range !== undefined) ranges.push({ at: `${where}.ipam.range`, subnet: i.range, gateway: i.gateway });
  if (i.subnet !== undefined)
    ranges.push({ at: `${where}.ipam.subnet`, subnet: i.subnet, gateway: i.gateway });
  if (Array.isArray(i.ranges)) {
    for (const [a, set] of (i.ranges as unknown[]).entries()) {
      for (const [b, r] of (Array.isArray(set) ? set : [set]).entries()) {
        const range = (r ?? {}) as Record<string, unknown>;
        ranges.push({
          at: `${where}.ipam.ranges[${a}][${b}].subnet`,
          subnet: range.subnet,
          gateway: range.gateway,
        });
      }
    }
  }
  for (const r of ranges) {
    if (typeof r.subnet !== "string" || !isCidr(r.subnet))
      return `${r.at}: expected a network in CIDR notation (e.g. "172.16.0.0/24"), found ${JSON.stringify(r.subnet)}`;
    if (
      r.gateway !== undefined &&
      (typeof r.gateway !== "string" || !isIpAddress(r.gateway) || !cidrContains(r.subnet, r.gateway))
    ) {
      return `${r.at}: gateway ${JSON.stringify(r.gateway)} must be an address inside ${r.subnet}`;
    }
  }
  if (Array.isArray(i.routes)) {
    for (const [n, route] of (i.routes as Array<{ dst?: unknown }>).entries()) {
      if (typeof route?.dst !== "string" || !isCidr(route.dst))
        return `${where}.ipam.routes[${n}].dst: expected a network in CIDR notation, found ${JSON.stringify(route?.dst)}`;
    }
  }
  if (Array.isArray(i.addresses)) {
    for (const [n, a] of (i.addresses as Array<{ address?: unknown }>).entries()) {
      if (typeof a?.address !== "string" || !isCidr(a.address))
        return `${where}.ipam.addresses[${n}].address: expected address/prefix, found ${JSON.stringify(a?.address)}`;
    }
  }
  return undefined;
}

/** A whereabouts range and the master it hands addresses out on. */
function whereaboutsRange(config: string): { master: string; range: string } | undefined {
  try {
    const parsed = JSON.parse(config) as Record<string, unknown>;
    for (const plugin of pluginsOf(parsed)) {
      const ipam = plugin.ipam as { type?: unknown; range?: unknown } | undefined;
      if (
        ipam?.type === "whereabouts" &&
        typeof plugin.master === "string" &&
        typeof ipam.range === "string" &&
        isCidr(ipam.range)
      ) {
        return { master: plugin.master, range: ipam.range };
      }
    }
  } catch {
    // not JSON: no range
  }
  return undefined;
}

/** The networks a NAD's IPAM hands addresses out of (whereabouts range, host-local subnet or ranges). */
export function ipamNetworks(config: string): string[] {
  try {
    const networks: string[] = [];
    for (const plugin of pluginsOf(JSON.parse(config) as Record<string, unknown>)) {
      const ipam = plugin.ipam as { range?: unknown; subnet?: unknown; ranges?: unknown } | undefined;
      if (!ipam) continue;
      for (const candidate of [ipam.range, ipam.subnet])
        if (typeof candidate === "string" && isCidr(candidate)) networks.push(candidate);
      if (Array.isArray(ipam.ranges)) {
        for (const set of ipam.ranges as unknown[]) {
          for (const r of Array.isArray(set) ? set : [set]) {
            const subnet = (r as { subnet?: unknown } | null)?.subnet;
            if (typeof subnet === "string" && isCidr(subnet)) networks.push(subnet);
          }
        }
      }
    }
    return networks;
  } catch {
    return [];
  }
}

export function validateNad(request: AdmissionRequest, view: ClusterView, settings: RuleSettings): Verdict {
  if (request.operation === "DELETE") {
    // Allowed: deleting does not stop running pods, but new ones naming it will be refused. Say who uses it.
    const users = view
      .podsUsingNad(request.namespace, request.name)
      .filter((p) => !p.terminating && p.phase !== "Succeeded" && p.phase !== "Failed");
    if (users.length === 0) return allow();
    const names = users.map((p) => p.key).sort();
    return allow({
      warnings: [
        `NetworkAttachmentDefinition ${request.namespace}/${request.name} is used by running pods: ${names.slice(0, 5).join(", ")}${names.length > 5 ? ` and ${names.length - 5} more` : ""}`,
      ],
    });
  }
  const nad = request.object;
  const name = nad?.metadata?.name ?? request.name;
  const namespace = nad?.metadata?.namespace ?? request.namespace;
  const violations: Violation[] = [];
  const selector = annotationsOf(nad)[NAD_NODE_SELECTOR];
  if (selector !== undefined) {
    const parsed = parseNodeSelector(selector);
    if (!parsed.ok) violations.push(malformed(`${annotationField(NAD_NODE_SELECTOR)}: ${parsed.error}`));
  }
  const text = (nad?.spec as { config?: unknown } | undefined)?.config;
  // A NAD without config names a CNI config file on the node.
  if (text !== undefined && text !== "")
    violations.push(...configViolations(text, name, namespace, view, settings));
  return violations.length > 0 ? refuse(violations) : allow();
}

/** Every plugin's problems, then an overlap with another whereabouts pool on the same master. */
function configViolations(
  text: unknown,
  name: string,
  namespace: string,
  view: ClusterView,
  settings: RuleSettings,
): Violation[] {
  if (typeof text !== "string")
    return [malformed(`spec.config: expected a JSON string, found ${JSON.stringify(text)}`)];
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (err) {
    return [malformed(`spec.config: expected JSON, but it does not parse: ${(err as Error).message}`)];
  }
  if (typeof config !== "object" || config === null || Array.isArray(config))
    return [malformed('spec.config: expected a JSON object (one plugin, or a "plugins" chain)')];
  const plugins = pluginsOf(config as Record<string, unknown>);
  if (plugins.length === 0) return [malformed("spec.config.plugins: expected at least one plugin")];
  const chained = Array.isArray((config as { plugins?: unknown }).plugins);
  const violations = plugins.flatMap((plugin, n) =>
    pluginViolations(
      plugin,
      chained ? `spec.config.plugins[${n}]` : "spec.config",
      name,
      namespace,
      settings,
    ),
  );
  // Two whereabouts pools on one master would hand out the same addresses.
  const mine = whereaboutsRange(text);
  if (mine) {
    for (const other of view.nads()) {
      if (other.namespace === namespace && other.name === name) continue;
      const theirs = whereaboutsRange(other.config);
      if (theirs && theirs.master === mine.master && cidrsOverlap(theirs.range, mine.range)) {
        violations.push(
          forbidden(
            `spec.config.ipam.range: ${mine.range} on master ${mine.master} overlaps ${theirs.range} of NetworkAttachmentDefinition ${other.key} on the same master`,
          ),
        );
      }
    }
  }
  return violations;
}

function pluginViolations(
  plugin: Plugin,
  where: string,
  name: string,
  namespace: string,
  settings: RuleSettings,
): Violation[] {
  if (typeof plugin?.type !== "string")
    return [malformed(`${where}.type: expected a plugin name, found ${JSON.stringify(plugin?.type)}`)];
  const violations: Violation[] = [];
  if (!settings.cniPlugins.includes(plugin.type)) {
    violations.push(
      forbidden(
        `${where}.type: plugin ${JSON.stringify(plugin.type)} is not allowed here; allowed: ${settings.cniPlugins.join(", ")}`,
      ),
    );
  }
  const ipamType = (plugin.ipam as { type?: unknown } | undefined)?.type;
  if (ipamType !== undefined && (typeof ipamType !== "string" || !settings.cniPlugins.includes(ipamType))) {
    violations.push(
      forbidden(
        `${where}.ipam.type: IPAM plugin ${JSON.stringify(ipamType)} is not allowed here; allowed: ${settings.cniPlugins.join(", ")}`,
      ),
    );
  }
  if (plugin.type === "kube-ovn") {
    const expected = `${name}.${namespace}.ovn`;
    if (
      typeof plugin.provider !== "string" ||
      (plugin.provider !== expected && !plugin.provider.startsWith(`${expected}.`))
    ) {
      violations.push(
        malformed(
          `${where}.provider: expected ${JSON.stringify(expected)} (<nad-name>.<nad-namespace>.ovn), found ${JSON.stringify(plugin.provider)}`,
        ),
      );
    }
    if (typeof plugin.server_socket !== "string" || !plugin.server_socket.startsWith("/")) {
      violations.push(
        malformed(
          `${where}.server_socket: expected an absolute path (e.g. "/run/openvswitch/kube-ovn-daemon.sock"), found ${JSON.stringify(plugin.server_socket)}`,
        ),
      );
    }
  }
  const modes = MODES[plugin.type];
  if (modes) {
    const problem = typeof plugin.master === "string" ? interfaceNameProblem(plugin.master) : undefined;
    if (typeof plugin.master !== "string")
      violations.push(
        malformed(
          `${where}.master: ${plugin.type} needs the node interface to attach to, found ${JSON.stringify(plugin.master)}`,
        ),
      );
    else if (problem) violations.push(malformed(`${where}.master: ${problem}`));
    if (plugin.mode !== undefined && (typeof plugin.mode !== "string" || !modes.includes(plugin.mode))) {
      violations.push(
        malformed(
          `${where}.mode: ${plugin.type} modes are ${modes.join(", ")}, found ${JSON.stringify(plugin.mode)}`,
        ),
      );
    }
  }
  const ipam = checkIpam(plugin.ipam, where);
  if (ipam) violations.push(malformed(ipam));
  return violations;
}
