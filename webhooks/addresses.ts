/** Address maths, in one place, on ipaddr.js. */
import ipaddr from "ipaddr.js";

/** True for one IPv4 or IPv6 address in its usual text form (no prefix length, no zone). */
export function isIpAddress(text: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(text) || (ipaddr.IPv6.isValid(text) && !text.includes("%"));
}

/** The canonical text of an address, so 10.0.0.01-style and IPv6 spellings compare equal. */
export function canonicalIp(text: string): string {
  return ipaddr.parse(text).toNormalizedString();
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
    const address = ipaddr.parse(ip.replace(/\/\d+$/, ""));
    return address.kind() === network.kind() && address.match([network, prefix] as [typeof address, number]);
  } catch {
    return false;
  }
}

function networkAddress(cidr: string): string {
  const [address] = ipaddr.parseCIDR(cidr);
  return address.kind() === "ipv4"
    ? ipaddr.IPv4.networkAddressFromCIDR(cidr).toString()
    : ipaddr.IPv6.networkAddressFromCIDR(cidr).toString();
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
