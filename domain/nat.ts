/**
 * A pod's NAT (seed 003): the external address it holds (its EIP, or its
 * SNAT address) and the row the cluster router gets for it, from its
 * annotations alone; the gateway ConfigMap's mode says which form.
 */
import { addressOf, canonicalIp, isIpAddress, isUnicastMac } from "./addresses.js";
import { ANNOTATION } from "./annotations.js";
import { type GatewayMode, gatewayModeOf, gatewayOf } from "./gateway-config.js";
import type { ClusterView } from "./view.js";
import type { PodFacts } from "./facts.js";
import type { NetworkModel } from "./settings.js";
import { portNameOf } from "./logical-ports.js";

/** A NAT row as the cluster router gets it for one pod. */
export interface NatRow {
  type: "dnat_and_snat" | "snat";
  external_ip: string;
  logical_ip: string;
  /** Distributed mode, EIP only: the pod's logical switch port and MAC, so its own node answers for the EIP. */
  logical_port?: string | null;
  external_mac?: string | null;
}

/** The external address a pod holds, whether or not its row can be written yet. */
export interface NatAddress {
  type: NatRow["type"];
  external_ip: string;
}

/**
 * What a pod's NAT should be: `holds` unset means it holds no address;
 * `row` unset means its row cannot be written yet (no IP of that family, or
 * for a distributed EIP no MAC) while the address may already be held.
 */
export interface NatWant {
  /** "namespace/name". */
  pod: string;
  holds?: NatAddress;
  row?: NatRow;
}

/** What admission claims: the address a pod asks for, as the review showed the pod. */
export interface NatClaim extends Record<string, unknown> {
  pod: string;
  /** The pod's uid when the request had one (validation of a CREATE does), else "". */
  uid: string;
  holds: NatAddress;
}

/**
 * The NAT row a pod's annotations ask for under `config`: none without an
 * EIP or SNAT address, or before the pod has an address of the same family
 * (and, for a distributed EIP, its MAC).
 */
export function natWantOf(
  namespace: string,
  name: string,
  annotations: Readonly<Record<string, string>>,
  mode: GatewayMode,
  model: NetworkModel,
): NatWant {
  const pod = `${namespace}/${name}`;
  const eip = annotations[ANNOTATION.eip];
  const snat = annotations[ANNOTATION.snat];
  const external = eip ?? snat;
  if (external === undefined || !isIpAddress(external)) return { pod };
  const holds: NatAddress = {
    type: eip === undefined ? "snat" : "dnat_and_snat",
    external_ip: canonicalIp(external),
  };
  const v6 = external.includes(":");
  const logicalIp = (annotations[ANNOTATION.ipAddress] ?? "")
    .split(",")
    .map((a) => addressOf(a.trim()))
    .find((a) => isIpAddress(a) && a.includes(":") === v6);
  if (!logicalIp) return { pod, holds };
  const addresses = { external_ip: holds.external_ip, logical_ip: canonicalIp(logicalIp) };
  if (eip === undefined) return { pod, holds, row: { type: "snat", ...addresses } };
  if (mode === "centralized") return { pod, holds, row: { type: "dnat_and_snat", ...addresses } };
  const mac = annotations[ANNOTATION.macAddress];
  if (!mac || !isUnicastMac(mac)) return { pod, holds };
  return {
    pod,
    holds,
    row: {
      type: "dnat_and_snat",
      ...addresses,
      logical_port: portNameOf(namespace, name, model),
      external_mac: mac.toLowerCase(),
    },
  };
}

/** A pod that has finished no longer uses its address (its IP may go to another pod). */
export function holdsAddresses(pod: { phase: string }): boolean {
  return pod.phase !== "Succeeded" && pod.phase !== "Failed";
}

/** True when two NAT rows are the same row as OVN sees it. */
export function sameNat(a: NatRow | undefined, b: NatRow | undefined): boolean {
  if (!a || !b) return a === b;
  return (
    a.type === b.type &&
    a.external_ip === b.external_ip &&
    a.logical_ip === b.logical_ip &&
    (a.logical_port ?? null) === (b.logical_port ?? null) &&
    (a.external_mac ?? null) === (b.external_mac ?? null)
  );
}

/** The NAT a stored pod asks for: nothing once it has finished (its IP may go to another pod). */
export function natWantOfStored(pod: PodFacts, view: ClusterView, model: NetworkModel): NatWant {
  if (!holdsAddresses(pod)) return { pod: pod.key };
  return natWantOf(pod.namespace, pod.name, pod.annotations, gatewayModeOf(view), model);
}

/**
 * Where there are gateway routers (seed 002's gateway-init), a pod's own EIP
 * or SNAT (seed 003) takes precedence: its packets to anywhere outside the
 * cluster subnet are sent to the external gateway (`external-gw-addr`), where
 * its NAT row applies, instead of a gateway router's SNAT. The addresses of
 * the pods whose NAT row can be written, and that next hop; none without an
 * enabled gateway.
 */
export function natEgressOf(view: ClusterView, model: NetworkModel): { sources: string[]; nexthop?: string } {
  const reading = gatewayOf(view);
  if (!reading.enabled || !reading.config) return { sources: [] };
  const sources = view
    .podsWithNat()
    .map((pod) => natWantOfStored(pod, view, model).row?.logical_ip)
    .filter((ip): ip is string => Boolean(ip) && !(ip as string).includes(":"));
  return { sources: [...new Set(sources)].sort(), nexthop: addressOf(reading.config.address) };
}
