/**
 * Network planes (seed 000): a node declares them in
 * `ovn.kubernetes.io/node_networks` as JSON `{plane: encapIP}`; a Subnet names
 * one in `spec.nodeNetwork`. One parser for the rules (with messages) and the
 * view (which keeps what parses).
 */
import { canonicalIp, isIpAddress } from "./addresses.js";

/** Node label per plane, kept by the node mutation so schedulers can select on planes. */
export const PLANE_LABEL_PREFIX = "planes.ovn-admission.io/";
/** Pod (and Binding) annotation recording the encap IP the pod uses on its node. */
export const ENCAP_IP_ANNOTATION = "ovn-admission.io/encap-ip";

export function planeLabel(plane: string): string {
  return `${PLANE_LABEL_PREFIX}${plane}`;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function isPlaneName(name: string): boolean {
  return name.length <= 63 && DNS_LABEL.test(name);
}

export interface NodeNetworks {
  /** plane -> encap IP, in the annotation's order. */
  planes: Record<string, string>;
  /** What is wrong with the annotation, each naming the plane or value; empty when valid. */
  problems: string[];
}

/** Parses `ovn.kubernetes.io/node_networks`; keeps the valid planes and lists the problems. */
export function readNodeNetworks(annotation: string | undefined): NodeNetworks {
  if (annotation === undefined || annotation.trim() === "") return { planes: {}, problems: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(annotation);
  } catch (err) {
    return {
      planes: {},
      problems: [
        `expected a JSON object of plane to encap IP, found invalid JSON (${(err as Error).message})`,
      ],
    };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return {
      planes: {},
      problems: [
        `expected a JSON object of plane to encap IP (e.g. {"storage": "10.10.10.10"}), found ${Array.isArray(parsed) ? "an array" : JSON.stringify(parsed)}`,
      ],
    };
  }
  const planes: Record<string, string> = {};
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const [plane, ip] of Object.entries(parsed)) {
    if (!isPlaneName(plane)) {
      problems.push(
        `plane ${JSON.stringify(plane)}: expected a DNS label (lower-case letters, digits and '-', at most 63)`,
      );
      continue;
    }
    if (typeof ip !== "string" || !isIpAddress(ip)) {
      problems.push(`plane ${plane}: expected one IPv4 or IPv6 address, found ${JSON.stringify(ip)}`);
      continue;
    }
    const canonical = canonicalIp(ip);
    const other = seen.get(canonical);
    if (other) {
      problems.push(`plane ${plane}: address ${ip} is already the encap IP of plane ${other} on this node`);
      continue;
    }
    seen.set(canonical, plane);
    planes[plane] = ip;
  }
  return { planes, problems };
}

/** `ovn.kubernetes.io/node_networks` as a plane -> IP map: what parses (the node rule reports the rest). */
export function parseNodeNetworks(annotation: string | undefined): Record<string, string> {
  return readNodeNetworks(annotation).planes;
}
