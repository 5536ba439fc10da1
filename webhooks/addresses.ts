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
