/**
 * The ovn-kubernetes topology (seed 002's master-init, minion-init and
 * gateway-init) as ovn-kubernetes names it (go-controller/pkg/types/const.go):
 * the distributed router `ovn_cluster_router`, the `join` switch its gateway
 * routers hang on, a switch per node behind `rtos-<node>`/`stor-<node>`, the
 * node's management port `k8s-<node>`, and per gateway node `GR_<node>` with
 * `ext_<node>`. Names and addresses only: pure, shared by the OVN writers,
 * the admission of Nodes and the tests.
 */
import {
  addressOf,
  cidrContains,
  isCidr,
  isIpAddress,
  macOfAddress,
  networkAddress,
  networkOf,
  numberToAddress,
  prefixOf,
  rangeOf,
} from "./addresses.js";
import { interfaceNameProblem } from "./attachments.js";

export const OVN_CLUSTER_ROUTER = "ovn_cluster_router";
export const JOIN_SWITCH = "join";
/** ovn-kubernetes' default join subnet (its --gateway-v4-join-subnet). */
export const DEFAULT_JOIN_SUBNET = "100.64.0.0/16";
/** ovn-kubernetes' name of the physical network a gateway's localnet port reaches. */
export const PHYSICAL_NETWORK = "physnet";

/** The annotation ovn-kubernetes' node agent reads (and writes) for the management port's MAC. */
export const MANAGEMENT_MAC_ANNOTATION = "k8s.ovn.org/node-mgmt-port-mac-address";

export const topologyNames = {
  routerToSwitch: (node: string) => `rtos-${node}`,
  switchToRouter: (node: string) => `stor-${node}`,
  managementPort: (node: string) => `k8s-${node}`,
  gatewayRouter: (node: string) => `GR_${node}`,
  externalSwitch: (node: string) => `ext_${node}`,
  /** The router's port on the join switch, and the join switch's port facing it. */
  routerToJoin: (router: string) => `rtoj-${router}`,
  joinToRouter: (router: string) => `jtor-${router}`,
  routerToExternal: (router: string) => `rtoe-${router}`,
  externalToRouter: (router: string) => `etor-${router}`,
  /** The external switch's localnet port: the OVS bridge of the physical interface, as ovn-kubernetes' gateway-init called it. */
  localnetPort: (physicalInterface: string, node: string) => `br${physicalInterface}_${node}`,
} as const;

/** The node subnet's second address: the management port's (the first is the router's). */
export function managementIpOf(nodeSubnet: string): string {
  const range = rangeOf(nodeSubnet);
  return numberToAddress(range.first + 2n, range.family);
}

/** The management port's address and the MAC ovn-kubernetes derives from it (0a:58 and the IPv4 bytes). */
export function managementPortOf(nodeSubnet: string): { ip: string; mac: string; cidr: string } {
  const ip = managementIpOf(nodeSubnet);
  return { ip, mac: macOfAddress(ip), cidr: `${ip}/${prefixOf(nodeSubnet)}` };
}

/** The cluster router's address on the join switch (the join subnet's first host). */
export function clusterRouterJoinIpOf(joinSubnet: string): string {
  const range = rangeOf(joinSubnet);
  return numberToAddress(range.first + 1n, range.family);
}

/**
 * A gateway router's address on the join switch, from its node's subnet: the
 * n-th node subnet of the cluster subnet gets the join subnet's (n+2)-th
 * address. Node subnets are unique, so join addresses are, with no claim.
 */
export function gatewayJoinIpOf(
  nodeSubnet: string,
  clusterIpSubnet: string,
  joinSubnet: string,
): string | undefined {
  const cluster = rangeOf(clusterIpSubnet);
  const node = rangeOf(nodeSubnet);
  const size = node.last - node.first + 1n;
  const index = (node.first - cluster.first) / size;
  const join = rangeOf(joinSubnet);
  const n = join.first + 2n + index;
  return n < join.last ? numberToAddress(n, join.family) : undefined;
}

/**
 * A Node's declaration that it is a gateway, as seed 002's gateway-init takes
 * it (`--physical-interface eth1 --physical-ip 10.33.74.138/24 --default-gw
 * 10.33.74.253`): JSON with those three keys.
 */
export const GATEWAY_ANNOTATION = "ovn-admission.io/gateway";

export interface NodeGateway {
  physicalInterface: string;
  /** Address with its prefix length, on the external network. */
  physicalIp: string;
  defaultGateway: string;
}

const GATEWAY_KEYS = { "physical-interface": "", "physical-ip": "", "default-gw": "" } as const;

/** The gateway a Node declares, or what is wrong with the declaration (each problem names its key, what was expected and what was found). */
export function readNodeGateway(text: string): { gateway?: NodeGateway; problems: string[] } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { problems: [`expected JSON, found ${JSON.stringify(text)} (${(err as Error).message})`] };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    return {
      problems: [
        `expected a JSON object with ${Object.keys(GATEWAY_KEYS).join(", ")}, found ${JSON.stringify(parsed)}`,
      ],
    };
  const given = parsed as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of Object.keys(given))
    if (!(key in GATEWAY_KEYS))
      problems.push(`unknown key ${JSON.stringify(key)} (expected ${Object.keys(GATEWAY_KEYS).join(", ")})`);
  const field = (key: keyof typeof GATEWAY_KEYS): string => {
    const value = given[key];
    if (typeof value === "string" && value) return value;
    problems.push(`${key}: expected a string, found ${JSON.stringify(value ?? null)}`);
    return "";
  };
  const physicalInterface = field("physical-interface");
  const physicalIp = field("physical-ip");
  const defaultGateway = field("default-gw");
  if (physicalInterface) {
    const problem = interfaceNameProblem(physicalInterface);
    if (problem) problems.push(`physical-interface: ${problem}`);
  }
  const ipOk = physicalIp !== "" && isCidr(physicalIp) && !physicalIp.includes(":");
  if (physicalIp && !ipOk)
    problems.push(
      `physical-ip: expected an IPv4 address with its prefix length (e.g. 10.33.74.138/24), found ${JSON.stringify(physicalIp)}`,
    );
  else if (ipOk && addressOf(physicalIp) === networkAddress(physicalIp))
    problems.push(`physical-ip: ${physicalIp} is its network's own address, not a host's`);
  if (defaultGateway && !isIpAddress(defaultGateway))
    problems.push(`default-gw: expected an IP address, found ${JSON.stringify(defaultGateway)}`);
  else if (defaultGateway && ipOk && !cidrContains(physicalIp, defaultGateway))
    problems.push(`default-gw: ${defaultGateway} is not in physical-ip's network ${networkOf(physicalIp)}`);
  else if (defaultGateway && ipOk && addressOf(physicalIp) === defaultGateway)
    problems.push(`default-gw: ${defaultGateway} is the physical IP itself`);
  return problems.length
    ? { problems }
    : { gateway: { physicalInterface, physicalIp, defaultGateway }, problems };
}
