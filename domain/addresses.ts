/** Address maths, in one place, on ipaddr.js. */
import ipaddr from "ipaddr.js";

/** True for one IPv4 or IPv6 address in its usual text form (no prefix length, no zone). */
export function isIpAddress(text: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(text) || (ipaddr.IPv6.isValid(text) && !text.includes("%"));
}

/** The canonical text of an address (RFC 5952 for IPv6), so that every spelling of one address compares equal. */
export function canonicalIp(text: string): string {
  return ipaddr.parse(text).toString();
}

/** True for a network in CIDR notation (address/prefix), IPv4 or IPv6. */
export function isCidr(text: string): boolean {
  try {
    ipaddr.parseCIDR(text);
    return text.includes("/");
  } catch {
    return false;
  }
}

/** True when `ip` (an address, or address/prefix whose address is used) lies inside `cidr`. */
export function cidrContains(cidr: string, ip: string): boolean {
  try {
    const [network, prefix] = ipaddr.parseCIDR(cidr);
    const address = ipaddr.parse(addressOf(ip));
    return address.kind() === network.kind() && address.match([network, prefix] as [typeof address, number]);
  } catch {
    return false;
  }
}

/** The network address of a CIDR, canonical ("172.56.0.0" for "172.56.0.1/16"). */
export function networkAddress(cidr: string): string {
  const [address] = ipaddr.parseCIDR(cidr);
  return address.kind() === "ipv4"
    ? ipaddr.IPv4.networkAddressFromCIDR(cidr).toString()
    : ipaddr.IPv6.networkAddressFromCIDR(cidr).toString();
}

/** The prefix length of "address/prefix" ("16" for "172.56.0.1/16"). */
export function prefixOf(cidr: string): string {
  return cidr.slice(cidr.lastIndexOf("/") + 1);
}

/** A CIDR's network in canonical form ("172.56.0.0/16" for "172.56.0.1/16"). */
export function networkOf(cidr: string): string {
  return `${networkAddress(cidr)}/${prefixOf(cidr)}`;
}

/** The IPv4 broadcast address of a CIDR; undefined for IPv6 (which has none) and for /31 and /32. */
export function broadcastAddress(cidr: string): string | undefined {
  const [address, prefix] = ipaddr.parseCIDR(cidr);
  if (address.kind() !== "ipv4" || prefix >= 31) return undefined;
  return ipaddr.IPv4.broadcastAddressFromCIDR(cidr).toString();
}

/** True when two addresses are the same address (any spelling). */
export function sameIp(a: string, b: string): boolean {
  return isIpAddress(a) && isIpAddress(b) && canonicalIp(a) === canonicalIp(b);
}

/** The address part of "address/prefix" (or the address itself). */
export function addressOf(text: string): string {
  return text.replace(/\/\d+$/, "");
}

/** True when two CIDRs share an address: one holds the other's network address. */
export function cidrsOverlap(a: string, b: string): boolean {
  try {
    return cidrContains(a, networkAddress(b)) || cidrContains(b, networkAddress(a));
  } catch {
    return false;
  }
}

/** A unicast MAC address in colon form (the lowest bit of the first byte is 0). */
export function isUnicastMac(text: string): boolean {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) return false;
  return (parseInt(text.slice(0, 2), 16) & 1) === 0;
}

/** An address as a number (IPv4 and IPv6 alike), for counting through a range. */
export function addressToNumber(ip: string): bigint {
  return ipaddr
    .parse(ip)
    .toByteArray()
    .reduce((n, byte) => (n << 8n) | BigInt(byte), 0n);
}

/** The address of `family` that `n` numbers (the inverse of addressToNumber). */
export function numberToAddress(n: bigint, family: "ipv4" | "ipv6"): string {
  const bytes: number[] = [];
  for (let i = 0; i < (family === "ipv4" ? 4 : 16); i++) {
    bytes.unshift(Number(n & 0xffn));
    n >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/** What a subnet's CIDR holds: its family and the numbers of its first and last address. */
export interface AddressRange {
  family: "ipv4" | "ipv6";
  cidr: string;
  first: bigint;
  last: bigint;
}

export function rangeOf(cidr: string): AddressRange {
  const [address, prefix] = ipaddr.parseCIDR(cidr);
  const family = address.kind();
  const bits = family === "ipv4" ? 32 : 128;
  const first = addressToNumber(networkAddress(cidr));
  return { family, cidr: networkOf(cidr), first, last: first + (1n << BigInt(bits - prefix)) - 1n };
}

/**
 * Kube-OVN's `excludeIps` entries: an address, or a range "a..b". Expanded to
 * number ranges of the family; an entry that does not parse is left out (the
 * Subnet rule reports it).
 */
export function excludedRanges(entries: readonly string[]): Array<{ from: bigint; to: bigint }> {
  const ranges: Array<{ from: bigint; to: bigint }> = [];
  for (const entry of entries) {
    const [from = "", to = from] = entry.trim().split("..");
    if (!isIpAddress(from) || !isIpAddress(to)) continue;
    const a = addressToNumber(from);
    const b = addressToNumber(to);
    ranges.push(a <= b ? { from: a, to: b } : { from: b, to: a });
  }
  return ranges;
}

/** The MAC ovn-kubernetes derives from an address: 0a:58 and the address's last four bytes (unicast, locally administered). */
export function macOfAddress(ip: string): string {
  const bytes = ipaddr.parse(ip).toByteArray().slice(-4);
  return ["0a", "58", ...bytes.map((b) => b.toString(16).padStart(2, "0"))].join(":");
}

/** The first address after a network's own: where ovn-kubernetes puts a node subnet's gateway. */
export function firstHostOf(cidr: string): string {
  const range = rangeOf(cidr);
  return numberToAddress(range.first + 1n, range.family);
}
