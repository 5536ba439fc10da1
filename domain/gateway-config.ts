/**
 * The external gateway ConfigMap (seed 003, `kube-system/ovn-external-gw-config`)
 * read in one place: the ConfigMap rule checks it, the pod rule checks EIP and
 * SNAT addresses against it, the gateway handler programs OVN from it.
 */
import {
  addressOf,
  broadcastAddress,
  cidrContains,
  isCidr,
  isIpAddress,
  isUnicastMac,
  networkAddress,
  networkOf,
  prefixOf,
  sameIp,
} from "./addresses.js";
import type { ClusterView } from "./view.js";
import type { ConfigMapFacts } from "./facts.js";
import { didYouMean } from "./spelling.js";
import { interfaceNameProblem } from "./attachments.js";

export const GATEWAY_KEY = {
  enabled: "enable-external-gw",
  type: "type",
  nodes: "external-gw-nodes",
  nic: "external-gw-nic",
  address: "external-gw-addr",
  nicIp: "nic-ip",
  nicMac: "nic-mac",
} as const;

/** Keys Kube-OVN reads that we do not: known, so not reported as misspellings. */
const OTHER_KUBE_OVN_KEYS = ["external-gw-switch", "bfd-enabled", "bfd-min-rx", "bfd-min-tx", "bfd-mult"];

export type GatewayMode = "centralized" | "distributed";

export interface GatewayConfig {
  mode: GatewayMode;
  /** Gateway nodes named by `external-gw-nodes` (centralized mode). */
  nodes: string[];
  nic: string;
  /** `external-gw-addr`: the physical gateway's address with the network's prefix, e.g. "172.56.0.1/16". */
  address: string;
  /** `nic-ip`: the router port's address with prefix, e.g. "172.56.0.254/16". */
  nicIp: string;
  /** `nic-mac`, lower case. */
  nicMac: string;
}

export type GatewayReading =
  | { enabled: false; problems: string[]; warnings: string[] }
  | { enabled: true; config: GatewayConfig | undefined; problems: string[]; warnings: string[] };

const MODES: readonly GatewayMode[] = ["centralized", "distributed"];
const NODE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const at = (key: string) => `data["${key}"]`;
const quoted = (v: string) => JSON.stringify(v);

/**
 * Reads the ConfigMap's data. Every problem names its key, what was expected
 * and what was found; `config` is set only when there is none.
 */
export function readGatewayConfig(data: Readonly<Record<string, string>>): GatewayReading {
  const problems: string[] = [];
  const warnings: string[] = [];
  const known: string[] = [...Object.values(GATEWAY_KEY), ...OTHER_KUBE_OVN_KEYS];
  for (const key of Object.keys(data)) {
    if (known.includes(key)) continue;
    const near = didYouMean(key, known);
    warnings.push(
      `${at(key)}: not a key of the external gateway${near ? `; did you mean ${quoted(near)}?` : ""}`,
    );
  }

  const enabled = data[GATEWAY_KEY.enabled];
  if (enabled !== undefined && enabled !== "true" && enabled !== "false") {
    problems.push(`${at(GATEWAY_KEY.enabled)}: expected "true" or "false", found ${quoted(enabled)}`);
  }
  if (enabled !== "true") return { enabled: false, problems, warnings };

  const type = data[GATEWAY_KEY.type] ?? "centralized";
  let mode: GatewayMode = "centralized";
  if ((MODES as readonly string[]).includes(type)) mode = type as GatewayMode;
  else {
    const near = didYouMean(type, MODES);
    problems.push(
      `${at(GATEWAY_KEY.type)}: ${near ? `did you mean ${quoted(near)}? ` : ""}expected "centralized" or "distributed", found ${quoted(type)}`,
    );
  }

  const nodes = (data[GATEWAY_KEY.nodes] ?? "")
    .split(",")
    .map((n) => n.trim())
    .filter(Boolean);
  if (mode === "centralized" && nodes.length === 0) {
    problems.push(
      `${at(GATEWAY_KEY.nodes)}: centralized mode needs the gateway nodes' names, comma-separated; found ${quoted(data[GATEWAY_KEY.nodes] ?? "")}`,
    );
  }
  for (const node of nodes) {
    if (!NODE_NAME.test(node) || node.length > 253)
      problems.push(`${at(GATEWAY_KEY.nodes)}: ${quoted(node)} is not a node name (a DNS subdomain)`);
  }

  const nic = data[GATEWAY_KEY.nic];
  if (nic === undefined || nic === "") {
    problems.push(
      `${at(GATEWAY_KEY.nic)}: expected the gateway nodes' interface name (e.g. "eth1"), found none`,
    );
  } else {
    const problem = interfaceNameProblem(nic);
    if (problem) problems.push(`${at(GATEWAY_KEY.nic)}: ${problem}`);
  }

  const address = data[GATEWAY_KEY.address] ?? "";
  const addressOk = isCidr(address) && isIpAddress(addressOf(address));
  if (!addressOk) {
    problems.push(
      `${at(GATEWAY_KEY.address)}: expected the physical gateway's address and prefix (e.g. "172.56.0.1/16"), found ${quoted(address)}`,
    );
  }

  const nicIp = data[GATEWAY_KEY.nicIp] ?? "";
  if (!isCidr(nicIp) || !isIpAddress(addressOf(nicIp))) {
    problems.push(
      `${at(GATEWAY_KEY.nicIp)}: expected the router port's address and prefix (e.g. "172.56.0.254/16"), found ${quoted(nicIp)}`,
    );
  } else if (addressOk) {
    const problem = externalAddressProblem(addressOf(nicIp), address, undefined);
    if (prefixOf(nicIp) !== prefixOf(address) || problem) {
      problems.push(
        `${at(GATEWAY_KEY.nicIp)}: expected an address of ${networkOf(address)} (the network of ${GATEWAY_KEY.address}) with the same prefix, found ${quoted(nicIp)}${problem ? `: ${problem}` : ""}`,
      );
    }
  }

  const nicMac = data[GATEWAY_KEY.nicMac] ?? "";
  if (!isUnicastMac(nicMac)) {
    problems.push(
      `${at(GATEWAY_KEY.nicMac)}: expected a unicast MAC address (e.g. "16:52:f3:13:6a:25"), found ${quoted(nicMac)}`,
    );
  }

  return {
    enabled: true,
    config:
      problems.length === 0
        ? { mode, nodes, nic: nic as string, address, nicIp, nicMac: nicMac.toLowerCase() }
        : undefined,
    problems,
    warnings,
  };
}

/**
 * Why `ip` cannot be an external address (EIP, SNAT, nic-ip) on the network
 * of `gatewayAddress`, or undefined when it can. `nicIp` is left out when the
 * address being checked is nic-ip itself.
 */
export function externalAddressProblem(
  ip: string,
  gatewayAddress: string,
  nicIp: string | undefined,
): string | undefined {
  const network = networkOf(gatewayAddress);
  if (!cidrContains(gatewayAddress, ip)) return `${ip} is outside the external network ${network}`;
  if (sameIp(ip, networkAddress(gatewayAddress))) return `${ip} is the network address of ${network}`;
  const broadcast = broadcastAddress(gatewayAddress);
  if (broadcast && sameIp(ip, broadcast)) return `${ip} is the broadcast address of ${network}`;
  if (sameIp(ip, addressOf(gatewayAddress)))
    return `${ip} is the physical gateway's address (external-gw-addr)`;
  if (nicIp && sameIp(ip, addressOf(nicIp))) return `${ip} is the gateway router port's address (nic-ip)`;
  return undefined;
}

const NO_GATEWAY: GatewayReading = { enabled: false, problems: [], warnings: [] };
const readings = new WeakMap<ConfigMapFacts, GatewayReading>();

/**
 * The view's gateway ConfigMap, read once per version of it (facts are never
 * mutated): pod admissions, the reconciler and the routed marker all ask.
 */
export function gatewayOf(view: ClusterView): GatewayReading {
  const facts = view.gatewayConfig();
  if (!facts) return NO_GATEWAY;
  let reading = readings.get(facts);
  if (!reading) readings.set(facts, (reading = readGatewayConfig(facts.data)));
  return reading;
}

/** The gateway mode the view's ConfigMap sets (centralized when none that parses). */
export function gatewayModeOf(view: ClusterView): GatewayMode {
  const reading = gatewayOf(view);
  return reading.enabled && reading.config ? reading.config.mode : "centralized";
}
