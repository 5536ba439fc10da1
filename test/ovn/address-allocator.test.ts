/** The free-address search on its own: no database, the taken set is the caller's. */
import t from "tap";
import { AddressAllocator, familyOf, randomMac } from "../../ovn/address-allocator.js";
import { rangeOf } from "../../domain/addresses.js";

const take = (
  allocator: AddressAllocator,
  cidr: string,
  count: number,
  opts: Partial<{ gateway: string; exclude: string[]; held: Set<string> }> = {},
) => {
  const held = opts.held ?? new Set<string>();
  const given: Array<string | undefined> = [];
  for (let i = 0; i < count; i++) {
    const ip = allocator.nextFree({
      subnet: "s",
      range: rangeOf(cidr),
      gateway: opts.gateway ?? "",
      exclude: opts.exclude ?? [],
      taken: (ip) => held.has(ip),
    });
    if (ip) held.add(ip);
    given.push(ip);
  }
  return given;
};

t.test(
  "in order from the first host, past the gateway and the excluded, until the subnet is full",
  async (t) => {
    const allocator = new AddressAllocator();
    t.same(
      take(allocator, "10.16.0.0/29", 5, { gateway: "10.16.0.1", exclude: ["10.16.0.3..10.16.0.4"] }),
      ["10.16.0.2", "10.16.0.5", "10.16.0.6", undefined, undefined],
      "network, gateway, excluded and broadcast are never given",
    );
  },
);

t.test("the cursor goes on after what it gave, and wraps once to what was freed", async (t) => {
  const allocator = new AddressAllocator();
  const held = new Set<string>();
  t.same(take(allocator, "10.0.0.0/29", 3, { held }), ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
  held.delete("10.0.0.1");
  t.same(take(allocator, "10.0.0.0/29", 4, { held }), ["10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.1"]);
});

t.test("a preview finds the address and leaves the cursor", async (t) => {
  const allocator = new AddressAllocator();
  const query = { subnet: "s", range: rangeOf("10.0.0.0/24"), gateway: "", exclude: [], taken: () => false };
  t.equal(allocator.nextFree({ ...query, preview: true }), "10.0.0.1");
  t.equal(allocator.nextFree({ ...query, preview: true }), "10.0.0.1");
  t.equal(allocator.nextFree(query), "10.0.0.1");
  t.equal(allocator.nextFree(query), "10.0.0.2");
});

t.test("/31 gives its upper address and /32 its one; IPv6 all but the subnet-router anycast", async (t) => {
  t.same(take(new AddressAllocator(), "10.0.0.0/31", 3), ["10.0.0.1", undefined, undefined]);
  t.same(take(new AddressAllocator(), "10.0.0.7/32", 2), ["10.0.0.7", undefined]);
  t.same(take(new AddressAllocator(), "fd00::/126", 4), ["fd00::1", "fd00::2", "fd00::3", undefined]);
  t.equal(familyOf("fd00::1"), "ipv6");
  t.equal(familyOf("10.0.0.1"), "ipv4");
});

t.test("a random MAC keeps the 0a:58 prefix", async (t) => {
  let n = 0;
  t.equal(
    randomMac(() => [0, 0.5, 0.999, 0.25][n++ % 4] as number),
    "0a:58:00:80:ff:40",
  );
  t.match(randomMac(), /^0a:58(:[0-9a-f]{2}){4}$/);
});
