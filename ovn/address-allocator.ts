/**
 * Where a subnet's next free address is, without I/O: a cursor per subnet
 * and family that moves past what it gave, skipping the gateway, what is
 * excluded (a range in one jump) and what the caller says is taken. A search
 * costs what was taken since the cursor, and one wrap at most, so allocation
 * is O(1) amortised as a subnet fills. The port writer asks it, and the
 * database's `wait` decides (a race lost is a next call).
 */
import { addressToNumber, excludedRanges, numberToAddress, type AddressRange } from "../domain/addresses.js";

export const familyOf = (ip: string): "ipv4" | "ipv6" => (ip.includes(":") ? "ipv6" : "ipv4");

export interface FreeAddressQuery {
  subnet: string;
  range: AddressRange;
  /** The subnet's gateway of this family ("" for none): never given. */
  gateway: string;
  /** `spec.excludeIps`: addresses and `from..to` ranges never given. */
  exclude: readonly string[];
  /** Whether another pod holds (or is being given) `ip`. */
  taken: (ip: string) => boolean;
  /** A preview (dryRun) finds the address but leaves the cursor where it was. */
  preview?: boolean;
}

export class AddressAllocator {
  private readonly cursors = new Map<string, bigint>();

  /** The next free address of the range from the subnet's cursor, wrapping once; undefined when none is. */
  nextFree(query: FreeAddressQuery): string | undefined {
    const { range } = query;
    const cursorKey = `${query.subnet}|${range.family}`;
    const excluded = excludedRanges(query.exclude);
    const gatewayN = query.gateway ? addressToNumber(query.gateway) : -1n;
    // IPv4 keeps the network and broadcast addresses out (but for /31 and /32); IPv6 only the subnet-router anycast.
    const lastUsable =
      range.family === "ipv4" && range.last - range.first > 1n ? range.last - 1n : range.last;
    const firstUsable = range.last > range.first ? range.first + 1n : range.first;
    const start = this.cursors.get(cursorKey) ?? firstUsable;
    let n = start;
    let wrapped = false;
    for (;;) {
      if (wrapped && n >= start) return undefined;
      if (n > lastUsable) {
        if (wrapped) return undefined;
        wrapped = true;
        n = firstUsable;
        continue;
      }
      const skip = excluded.find((r) => n >= r.from && n <= r.to);
      if (skip) {
        n = skip.to + 1n;
        continue;
      }
      const candidate = n++;
      if (candidate === gatewayN) continue;
      const ip = numberToAddress(candidate, range.family);
      if (query.taken(ip)) continue;
      if (!query.preview) this.cursors.set(cursorKey, n);
      return ip;
    }
  }
}

/** A random MAC of the locally administered 0a:58 prefix (Kube-OVN's), for when the derived one is another port's. */
export function randomMac(random: () => number = Math.random): string {
  return [
    "0a",
    "58",
    ...Array.from({ length: 4 }, () =>
      Math.floor(random() * 256)
        .toString(16)
        .padStart(2, "0"),
    ),
  ].join(":");
}
