/**
 * Pods' addresses and logical switch ports (Kube-OVN's primary network), in
 * the two steps of ADR 0004:
 *
 * - claim, at admission (a pod CREATE with spec.nodeName, or its
 *   pods/binding): the address is chosen from the free-address index and
 *   taken by inserting the pod's port, disabled, on the claims switch (no
 *   router, no localnet: it carries nothing). `wait`s in the same transaction
 *   fail when another port already has one of the addresses (or the MAC, in
 *   that subnet), so of two replicas or two pods racing, one gets it and the
 *   other takes the next free address (or is refused, when it asked for that
 *   one). The answer is the annotations the pod gets.
 * - program, from the pod the API server stored: the claimed port moves to its
 *   subnet's switch and is enabled, with the stored pod's uid and
 *   resourceVersion; a pod that was admitted while we were away gets its port
 *   there, under the same `wait`s.
 *
 * The free-address index is the ovsdb-client monitor cache of our ports: no
 * `select` per admission. A restart rebuilds it from the Northbound.
 */
import type { Logger } from "pino";
import {
  CLAIMS_SWITCH,
  claimPortName,
  claimUuid,
  createIfAbsent,
  NB,
  OWNER as OWNERS,
  PORT_IDS,
} from "./rows.js";
import {
  ConnectionClosedError,
  ConstraintViolationError,
  RequestTimeoutError,
  indexBy,
  namedUuid,
  op,
  TimedOutError,
  type Condition,
  type NamedUuid,
  type DatabaseCache,
  type Operation,
  type OvsdbClient,
  type Row,
} from "ovsdb-client";
import { canonicalIp, cidrContains, macOfAddress, rangeOf } from "../domain/addresses.js";
import { ANNOTATION, annotationField } from "../domain/annotations.js";
import type { NatClaim } from "../domain/nat.js";
import { type PortClaim, portAnnotations } from "../domain/port-claims.js";
import { ClaimDeferred, GroupCommit, transactGuarded } from "./group-commit.js";
import { AddressAllocator, familyOf, randomMac } from "./address-allocator.js";
import { PodRowsChanged, type ClaimPart } from "./nat.js";
import { type Intent, IntentRefused, type IntentResult } from "../domain/intents.js";
import type { IntentHandler } from "./intent-runner.js";

const LSP = "Logical_Switch_Port";
const OWNER = OWNERS.port;

/** Takes a port off its switch (a port nobody references is garbage-collected with it). */
const unlinkPort = (port: { on: string; uuid: string }): Operation =>
  op.mutate("Logical_Switch", [["name", "==", port.on]], [["ports", "delete", [port.uuid]]]);
/** Sets these external_ids keys of a port, leaving its other keys as they are. */
const stampPort = (uuid: string, ids: Record<string, string>): Operation =>
  op.mutate(
    LSP,
    [["_uuid", "==", uuid]],
    [
      ["external_ids", "delete", Object.keys(ids)],
      ["external_ids", "insert", ids],
    ],
  );
/** Puts a port (its uuid, or the uuid-name it is inserted under) on a switch. */
const linkPort = (on: string, port: string | NamedUuid): Operation =>
  op.mutate("Logical_Switch", [["name", "==", on]], [["ports", "insert", [port]]]);

/** A port of ours, as the cache holds it. */
export interface OwnedPort {
  uuid: string;
  name: string;
  pod: string;
  uid: string;
  subnet: string;
  ips: string[];
  mac: string;
  since: number;
  enabled: boolean;
}

function ownedOf(row: Row): OwnedPort {
  const ids = row.external_ids as Record<string, string>;
  const [address = ""] = (row.addresses as string[] | null) ?? [];
  const [mac = "", ...ips] = address.split(" ");
  return {
    uuid: String(row._uuid),
    name: String(row.name),
    pod: ids[PORT_IDS.pod] ?? "",
    uid: ids[PORT_IDS.uid] ?? "",
    subnet: ids[PORT_IDS.subnet] ?? "",
    ips,
    mac,
    since: Number(ids[PORT_IDS.since] ?? 0),
    enabled: row.enabled !== false,
  };
}

const addressKey = (subnet: string, ip: string) => `${subnet}|${canonicalIp(ip)}`;
const macKey = (subnet: string, mac: string) => `${subnet}|${mac.toLowerCase()}`;
/** The external_ids key that records an address of the port's family. */
const addressIdOf = (ip: string) => (familyOf(ip) === "ipv4" ? PORT_IDS.ipv4 : PORT_IDS.ipv6);

class AddressTaken extends Error {
  override name = "AddressTaken";
}

/** The port has the stored pod's subnet, MAC and addresses. */
const holdsWhatIsStored = (p: OwnedPort, stored: StoredPort): boolean =>
  p.subnet === stored.subnet &&
  p.mac === stored.mac.toLowerCase() &&
  p.ips.join(",") === stored.ips.map(canonicalIp).join(",");

export type PortOutcome = "held" | "claimed" | "unchanged" | "written" | "released" | "waiting";

/** What a stored pod asks of its port: its annotations as the API server stored them. */
export interface StoredPort {
  pod: string;
  port: string;
  uid: string;
  resourceVersion: string;
  subnet: string;
  ips: string[];
  mac: string;
}

export interface PortReconcile {
  written: string[];
  released: string[];
  claimsReleased: string[];
  conflicts: string[];
}

export interface PortHandlerOptions {
  /**
   * Beside a running kube-ovn-controller (`--alongside kube-ovn`): ports stay
   * claims on the claims switch (named by claimPortName), a stored pod's
   * address is held there and never moved to its subnet's switch, and an
   * address a stored pod already has (given by that controller) is taken.
   */
  claimsOnly?: boolean;
  /** Beside another control plane: the stored pod that has `ip` in `subnet`, other than `pod` ("namespace/name"). */
  storedHolder?: (subnet: string, ip: string, pod: string) => string | undefined;
}

export class PortHandler {
  private cache: DatabaseCache | undefined;
  private ready: Promise<DatabaseCache> | undefined;
  /** Addresses chosen by admissions in flight here: not in the cache yet, not to be chosen twice. */
  private readonly pending = new Map<string, string>();
  /** A pod's claim in flight: a retried admission of the same pod waits for it instead of racing it. */
  private readonly claiming = new Map<string, Promise<IntentResult>>();
  /** Where each subnet's search for a free address goes on. */
  private readonly allocator = new AddressAllocator();
  /** Claims that arrive together share a transaction. */
  private readonly claims: GroupCommit;

  constructor(
    private readonly northbound: OvsdbClient,
    private readonly log: Logger,
    /** Claims a pod's EIP or SNAT address inside its port's transaction. */
    private readonly nat?: { claimPart(claim: NatClaim, fresh?: boolean): Promise<ClaimPart | undefined> },
    private readonly options: PortHandlerOptions = {},
  ) {
    this.claims = new GroupCommit(northbound, NB);
  }

  /** Beside another control plane: claims only, under names of ours, and the pod asks it for the address. */
  private get claimsOnly(): boolean {
    return this.options.claimsOnly === true;
  }

  /** The name of the pod's claim port: its own port's name, or one of ours beside another control plane. */
  private claimName(claim: Pick<PortClaim, "pod" | "port">): string {
    return this.claimsOnly ? claimPortName(claim.pod) : claim.port;
  }

  private annotationsFor(claim: PortClaim, ips: string[], mac: string): Record<string, string> {
    return portAnnotations(claim, ips, mac, this.claimsOnly);
  }

  get intents(): Record<string, IntentHandler> {
    return {
      "port-claim": (intent: Intent, _signal, mode) => this.claim(intent.spec as PortClaim, mode.dryRun),
    };
  }

  /** The claims switch, and the monitor cache the free-address index reads. */
  async start(): Promise<void> {
    const made = await createIfAbsent(this.northbound, "Logical_Switch", {
      name: CLAIMS_SWITCH,
      external_ids: { [PORT_IDS.owner]: OWNER },
    });
    if (made)
      this.log.info({ event: "claims-switch-created", switch: CLAIMS_SWITCH }, "claims switch created");
    await this.ports();
  }

  private ports(): Promise<DatabaseCache> {
    this.ready ??= this.northbound
      .cache(NB, {
        [LSP]: {
          columns: ["name", "addresses", "enabled", "external_ids"],
          indexes: {
            pod: indexBy.mapKey(PORT_IDS.pod),
            name: indexBy.column("name"),
            address: (row) =>
              [PORT_IDS.ipv4, PORT_IDS.ipv6]
                .map((k) => (row.external_ids as Record<string, string> | undefined)?.[k])
                .filter((v): v is string => Boolean(v)),
            mac: indexBy.mapKey(PORT_IDS.mac),
          },
        },
        // By port: which switch holds a port, without walking every switch.
        Logical_Switch: {
          columns: ["name", "ports"],
          indexes: { name: indexBy.column("name"), port: indexBy.column("ports") },
        },
      })
      .then((cache) => (this.cache = cache));
    this.ready.catch(() => (this.ready = undefined));
    return this.ready;
  }

  /** Our ports of a pod (claimed or programmed). */
  portsOf(pod: string): OwnedPort[] {
    return (this.cache?.table(LSP).lookup("pod", pod) ?? [])
      .filter((r) => (r.external_ids as Record<string, string>)[PORT_IDS.owner] === OWNER)
      .map(ownedOf);
  }

  /** The switch that holds a port ("" when none does: it is being dropped). */
  private switchOf(uuid: string): string {
    const [ls] = this.cache?.table("Logical_Switch").lookup("port", uuid) ?? [];
    return ls ? String(ls.name) : "";
  }

  /** A pod's ports, and which switch holds each: two index lookups. */
  placedOf(pod: string): Array<OwnedPort & { on: string }> {
    return this.portsOf(pod).map((p) => ({ ...p, on: this.switchOf(p.uuid) }));
  }

  /** Every port of ours, and which switch holds it. */
  owned(): Array<OwnedPort & { on: string }> {
    const cache = this.cache;
    if (!cache) return [];
    return [...cache.table(LSP).all()]
      .filter((r) => (r.external_ids as Record<string, string>)[PORT_IDS.owner] === OWNER)
      .map((r) => ({ ...ownedOf(r), on: this.switchOf(String(r._uuid)) }));
  }

  private holderOf(key: string): string | undefined {
    const [row] = this.cache?.table(LSP).lookup("address", key) ?? [];
    return row ? ((row.external_ids as Record<string, string>)[PORT_IDS.pod] ?? String(row.name)) : undefined;
  }

  private logWritten(stored: StoredPort, from: "claim" | "stored pod"): void {
    this.log.info(
      {
        event: "port-written",
        pod: stored.pod,
        subnet: stored.subnet,
        ips: stored.ips,
        uid: stored.uid,
        resourceVersion: stored.resourceVersion,
        from,
      },
      "logical switch port programmed from the stored pod",
    );
  }

  private taken(key: string, pod: string): boolean {
    const pendingFor = this.pending.get(key);
    if (pendingFor !== undefined) return pendingFor !== pod;
    const holder = this.holderOf(key) ?? this.storedHolderOf(key, pod);
    return holder !== undefined && holder !== pod;
  }

  /** Beside another control plane: a stored pod it gave the address to (it has no claim of ours). */
  private storedHolderOf(key: string, pod: string): string | undefined {
    const split = key.indexOf("|");
    return this.options.storedHolder?.(key.slice(0, split), key.slice(split + 1), pod);
  }

  /** The addresses and MAC the claim gets; IntentRefused when asked-for ones are taken or none is free. */
  private choose(claim: PortClaim, dryRun: boolean): { ips: string[]; mac: string } {
    const ips: string[] = [];
    for (const [i, cidr] of claim.cidrs.entries()) {
      const range = rangeOf(cidr);
      const asked = claim.ips?.find((ip) => familyOf(ip) === range.family);
      if (asked) {
        const key = addressKey(claim.subnet, asked);
        const holder = this.pending.get(key) ?? this.holderOf(key) ?? this.storedHolderOf(key, claim.pod);
        if (holder !== undefined && holder !== claim.pod)
          throw new IntentRefused(
            `${annotationField(ANNOTATION.ipAddress)}: ${asked} is already held by pod ${holder} in subnet ${claim.subnet}${this.pending.has(key) ? " (being admitted)" : ""}`,
          );
        ips.push(canonicalIp(asked));
        continue;
      }
      // A pool, when the pod (or its workload) names one, is where its address comes from.
      const pool = claim.pool?.filter((ip) => familyOf(ip) === range.family && cidrContains(cidr, ip)) ?? [];
      const ip = pool.length
        ? pool
            .map(canonicalIp)
            .find((candidate) => !this.taken(addressKey(claim.subnet, candidate), claim.pod))
        : this.allocator.nextFree({
            subnet: claim.subnet,
            range,
            gateway: claim.gateways[i] ?? "",
            exclude: claim.exclude,
            taken: (candidate) => this.taken(addressKey(claim.subnet, candidate), claim.pod),
            preview: dryRun,
          });
      if (!ip) {
        const size = range.last - range.first + 1n;
        throw new IntentRefused(
          pool.length
            ? `${annotationField(ANNOTATION.ipPool)}: every address of the pool (${pool.join(",")}) is held in subnet ${claim.subnet}`
            : `subnet ${claim.subnet} (${cidr}, ${size} addresses) has no free address left for pod ${claim.pod}`,
        );
      }
      ips.push(ip);
    }
    let mac = claim.mac?.toLowerCase() ?? macOfAddress(ips[0] as string);
    const macHolder = this.cache?.table(LSP).find("mac", macKey(claim.subnet, mac));
    const macHeld =
      macHolder && (macHolder.external_ids as Record<string, string>)[PORT_IDS.pod] !== claim.pod;
    if (macHeld && claim.mac) {
      throw new IntentRefused(
        `${annotationField(ANNOTATION.macAddress)}: ${claim.mac} is already the MAC of pod ${(macHolder.external_ids as Record<string, string>)[PORT_IDS.pod]} in subnet ${claim.subnet}`,
      );
    }
    // A derived MAC that another address already gave: a random one of the same locally administered prefix.
    while (macHeld && this.cache?.table(LSP).find("mac", macKey(claim.subnet, mac))) mac = randomMac();
    return { ips, mac };
  }

  /**
   * Takes an address (or one per family) and the port for the pod; answers
   * the annotations it gets. A pod that already has a port keeps its address.
   * On dryRun, answers what it would give and writes nothing.
   */
  async claim(claim: PortClaim, dryRun = false): Promise<IntentResult> {
    if (dryRun) return this.claimOnce(claim, true);
    // The API server retries a webhook call that timed out (a Northbound failover): the pod's first claim may still commit.
    const before = this.claiming.get(claim.pod);
    const mine = (before ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => this.claimOnce(claim, false));
    this.claiming.set(claim.pod, mine);
    try {
      return await mine;
    } finally {
      if (this.claiming.get(claim.pod) === mine) this.claiming.delete(claim.pod);
    }
  }

  private async claimOnce(claim: PortClaim, dryRun: boolean): Promise<IntentResult> {
    await this.ports();
    for (let attempt = 1; ; attempt++) {
      const [held] = this.portsOf(claim.pod);
      if (held && held.subnet === claim.subnet) {
        return { annotations: this.annotationsFor(claim, held.ips, held.mac) };
      }
      const chosen = this.choose(claim, dryRun);
      const annotations = this.annotationsFor(claim, chosen.ips, chosen.mac);
      if (dryRun)
        return { annotations, warnings: [`dryRun: ${chosen.ips.join(",")} would be given; nothing is held`] };
      const keys = [
        ...chosen.ips.map((ip) => addressKey(claim.subnet, ip)),
        macKey(claim.subnet, chosen.mac),
      ];
      for (const key of keys) this.pending.set(key, claim.pod);
      try {
        const natPart = claim.nat ? await this.nat?.claimPart(claim.nat, attempt > 1) : undefined;
        await this.insertPort(claim, chosen, { uid: claim.uid }, CLAIMS_SWITCH, natPart);
        natPart?.done();
        this.log.info(
          { event: "port-claimed", pod: claim.pod, subnet: claim.subnet, ips: chosen.ips, mac: chosen.mac },
          "address claimed",
        );
        return { annotations };
      } catch (err) {
        // Another replica took it between our read and our write: the next free one, unless it was asked for.
        if (err instanceof AddressTaken && !claim.ips?.length && attempt < 20) continue;
        // The pod's NAT rows were not what the cache said: read them from the database and try again.
        if (err instanceof PodRowsChanged && attempt < 5) continue;
        // A claim of the same address went first in a shared transaction: choose again, as if just after it.
        if (err instanceof ClaimDeferred && attempt < 20) continue;
        if (err instanceof AddressTaken)
          throw new IntentRefused(`${annotationField(ANNOTATION.ipAddress)}: ${err.message}`);
        const lost = err instanceof ConnectionClosedError || err instanceof RequestTimeoutError;
        if (!(lost && attempt < 5) && !(err instanceof ConstraintViolationError)) throw err;
        // The reply was lost (a RAFT leader change), or the port's name is taken: our commit may have happened.
        let committed: OwnedPort | undefined;
        try {
          if (lost) await this.northbound.connect({ timeoutMs: 3_000 });
          committed = await this.portNamed(this.claimName(claim));
        } catch (again) {
          if (again instanceof ConnectionClosedError || again instanceof RequestTimeoutError) continue;
          throw again;
        }
        if (committed?.pod === claim.pod)
          return { annotations: this.annotationsFor(claim, committed.ips, committed.mac) };
        if (committed)
          throw new IntentRefused(
            `logical switch port ${this.claimName(claim)} already exists in OVN Northbound and is not this pod's (${committed.pod || "not made by ovn-admission"})`,
          );
        if (!lost) throw err;
      } finally {
        for (const key of keys) this.pending.delete(key);
      }
    }
  }

  /** The port of that name as the database holds it now (not the cache, which may be resyncing). */
  private async portNamed(name: string): Promise<OwnedPort | undefined> {
    const [found] = await this.northbound.transact(NB, [
      op.select(LSP, [["name", "==", name]], ["_uuid", "name", "addresses", "enabled", "external_ids"]),
    ]);
    const row = found?.rows?.[0];
    return row ? ownedOf(row) : undefined;
  }

  /** Inserts the port on `into` (the claims switch, disabled, or the subnet's switch) under the address `wait`s. */
  private async insertPort(
    claim: Pick<PortClaim, "pod" | "port" | "subnet">,
    chosen: { ips: string[]; mac: string },
    stored: { uid: string; resourceVersion?: string },
    into: string,
    with_?: ClaimPart,
  ): Promise<void> {
    const address = `${chosen.mac} ${chosen.ips.join(" ")}`;
    const ids: Record<string, string> = {
      [PORT_IDS.owner]: OWNER,
      [PORT_IDS.pod]: claim.pod,
      [PORT_IDS.uid]: stored.uid,
      [PORT_IDS.subnet]: claim.subnet,
      [PORT_IDS.since]: String(Date.now()),
      [PORT_IDS.mac]: macKey(claim.subnet, chosen.mac),
    };
    if (stored.resourceVersion) ids[PORT_IDS.resourceVersion] = stored.resourceVersion;
    for (const ip of chosen.ips) ids[addressIdOf(ip)] = addressKey(claim.subnet, ip);
    const notOurs: Condition = ["external_ids", "excludes", { [PORT_IDS.pod]: claim.pod }];
    const heldBy = (key: string, value: string): Operation =>
      op.wait(LSP, [["external_ids", "includes", { [key]: value }], notOurs], ["name"], "==", [], 0);
    const addressHeld = (ip: string): Operation => heldBy(addressIdOf(ip), addressKey(claim.subnet, ip));
    // The IPv4 address (the IPv6 one in a v6-only subnet) is held by the port's UUID: one hash lookup,
    // whatever the table holds; whatever the order of the subnet's CIDRs. The IPv6 address of a dual-stack
    // port and an asked-for or random MAC are looked for in external_ids: a scan, paid only where they exist.
    const primary = chosen.ips.find((ip) => familyOf(ip) === "ipv4") ?? (chosen.ips[0] as string);
    const secondary = chosen.ips.filter((ip) => ip !== primary);
    const portUuid = claimUuid(addressKey(claim.subnet, primary));
    // What each wait guards, in order: an address per family, the MAC, the switch.
    const guards: Array<{ what: "address" | "mac" | "switch"; ip?: string; wait: Operation }> = [
      {
        what: "address",
        ip: primary,
        wait: op.wait(LSP, [["_uuid", "==", portUuid]], ["name"], "==", [], 0),
      },
      ...secondary.map((ip) => ({ what: "address" as const, ip, wait: addressHeld(ip) })),
    ];
    // A pod admitted while we were away gets its port from what was stored, not from a claim: the rare path,
    // where a port written before claims had UUIDs (a replica of an older version) must still be seen.
    if (into !== CLAIMS_SWITCH) guards.push({ what: "address", ip: primary, wait: addressHeld(primary) });
    // A MAC derived from an address the port holds is unique with it; an asked-for or random one is checked.
    if (chosen.mac !== macOfAddress(primary))
      guards.push({ what: "mac", wait: heldBy(PORT_IDS.mac, macKey(claim.subnet, chosen.mac)) });
    // The switch must be there, or OVSDB would drop the unreferenced port silently.
    guards.push({
      what: "switch",
      wait: op.wait("Logical_Switch", [["name", "==", into]], ["name"], "!=", [], 0),
    });
    const waits = guards.map((g) => g.wait);
    const writes = (name: string): Operation[] => [
      op.insert(
        LSP,
        {
          name: into === CLAIMS_SWITCH ? this.claimName(claim) : claim.port,
          addresses: [address],
          port_security: [address],
          enabled: into !== CLAIMS_SWITCH,
          external_ids: ids,
        },
        { uuidName: `port_${name}`, uuid: portUuid },
      ),
      linkPort(into, namedUuid(`port_${name}`)),
      ...(with_?.writes(name) ?? []),
    ];
    // What a failed wait means, by its index among this claim's waits (its own, then its NAT part's).
    const explain = async (index: number): Promise<Error> => {
      if (with_ && index >= waits.length) return with_.explain(index - waits.length);
      const failed = guards[index];
      if (failed?.what === "address")
        return new AddressTaken(
          `${failed.ip} was just taken in subnet ${claim.subnet} by pod ${this.holderOf(addressKey(claim.subnet, failed.ip as string)) ?? "another pod"}`,
        );
      if (failed?.what === "mac")
        return new AddressTaken(`MAC ${chosen.mac} was just taken in subnet ${claim.subnet}`);
      return new IntentRefused(
        `logical switch ${into} does not exist in OVN Northbound${into === CLAIMS_SWITCH ? " (it is made at start-up)" : ` (subnet ${claim.subnet} is programmed from its stored Subnet)`}`,
      );
    };
    const allWaits = [...waits, ...(with_?.waits ?? [])];
    if (into === CLAIMS_SWITCH) {
      // Claims that arrive together share a transaction (ovn/group-commit.ts).
      await this.claims.submit({
        keys: [...chosen.ips.map((ip) => addressKey(claim.subnet, ip)), ...(with_?.keys ?? [])],
        build: (name) => ({ waits: allWaits, writes: writes(name) }),
        explain,
      });
      return;
    }
    await transactGuarded(this.northbound, NB, {
      build: (name) => ({ waits: allWaits, writes: writes(name) }),
      explain,
    });
  }

  /**
   * Makes the stored pod's port what its annotations say: the claim moves to
   * the subnet's switch and is enabled; without a claim the port is made
   * there under the same `wait`s. A port on another switch, or with other
   * addresses, is replaced (an address never changes once allocated, so that
   * is a repair).
   */
  async program(stored: StoredPort): Promise<PortOutcome> {
    await this.ports();
    if (this.claimsOnly) return this.hold(stored);
    const same = (p: OwnedPort) => holdsWhatIsStored(p, stored);
    const placed = this.placedOf(stored.pod);
    const live = placed.find((p) => p.on === stored.subnet && same(p) && p.enabled);
    if (live && placed.length === 1) return "unchanged";
    const claimed = placed.find(
      (p) => p.on === CLAIMS_SWITCH && same(p) && (p.uid === "" || p.uid === stored.uid),
    );
    const others = placed.filter((p) => p !== live && p !== claimed);
    const unlink = (ports: Array<OwnedPort & { on: string }>): Operation[] => ports.map(unlinkPort);
    if (live) {
      await this.northbound.transact(NB, unlink(others.filter((p) => p.on)));
      return "written";
    }
    if (claimed) {
      const self: [string, "==", string] = ["_uuid", "==", claimed.uuid];
      const ids = {
        [PORT_IDS.uid]: stored.uid,
        [PORT_IDS.resourceVersion]: stored.resourceVersion,
        [PORT_IDS.since]: String(Date.now()),
      };
      try {
        await this.northbound.transact(NB, [
          op.wait("Logical_Switch", [["name", "==", stored.subnet]], ["name"], "!=", [], 0),
          ...unlink(others.filter((p) => p.on)),
          stampPort(claimed.uuid, ids),
          op.update(LSP, [self], { enabled: true }),
          unlinkPort({ on: CLAIMS_SWITCH, uuid: claimed.uuid }),
          linkPort(stored.subnet, claimed.uuid),
        ]);
      } catch (err) {
        if (err instanceof TimedOutError && err.index === 0)
          throw new IntentRefused(
            `logical switch ${stored.subnet} does not exist (subnet ${stored.subnet} is programmed from its stored Subnet)`,
          );
        throw err;
      }
      this.logWritten(stored, "claim");
      return "written";
    }
    if (others.some((p) => p.on)) await this.northbound.transact(NB, unlink(others.filter((p) => p.on)));
    await this.insertStored(stored, stored.subnet);
    this.logWritten(stored, "stored pod");
    return "written";
  }

  /**
   * Beside another control plane, the stored pod's address is held by a
   * claim of ours and nothing else is written: the claim is stamped with the
   * stored pod's uid, or made (under the same `wait`s) for a pod that
   * controller addressed without us. Its own port is that controller's.
   */
  private async hold(stored: StoredPort): Promise<PortOutcome> {
    const placed = this.placedOf(stored.pod).filter((p) => p.on === CLAIMS_SWITCH);
    const claimed = placed.find(
      (p) => holdsWhatIsStored(p, stored) && (p.uid === "" || p.uid === stored.uid),
    );
    const others = placed.filter((p) => p !== claimed);
    if (others.length) await this.northbound.transact(NB, others.map(unlinkPort));
    if (claimed) {
      if (claimed.uid === stored.uid) return others.length ? "written" : "unchanged";
      await this.northbound.transact(NB, [
        stampPort(claimed.uuid, {
          [PORT_IDS.uid]: stored.uid,
          [PORT_IDS.resourceVersion]: stored.resourceVersion,
        }),
      ]);
      return "written";
    }
    await this.insertStored(stored, CLAIMS_SWITCH);
    this.log.info(
      { event: "port-held", pod: stored.pod, subnet: stored.subnet, ips: stored.ips, uid: stored.uid },
      "address of a stored pod held by a claim",
    );
    return "written";
  }

  /** The stored pod's port inserted on `into` under the address `wait`s; an address another holds is a refusal. */
  private async insertStored(stored: StoredPort, into: string): Promise<void> {
    try {
      await this.insertPort(
        stored,
        { ips: stored.ips.map(canonicalIp), mac: stored.mac.toLowerCase() },
        stored,
        into,
      );
    } catch (err) {
      if (err instanceof AddressTaken) throw new IntentRefused(`pod ${stored.pod}: ${err.message}`);
      throw err;
    }
  }

  /** Removes the pod's ports and claims. */
  async release(pod: string): Promise<PortOutcome> {
    await this.ports();
    const placed = this.placedOf(pod).filter((p) => p.on);
    if (placed.length === 0) return "unchanged";
    await this.northbound.transact(NB, placed.map(unlinkPort));
    this.log.info({ event: "port-released", pod, ports: placed.length }, "logical switch ports released");
    return "released";
  }

  /**
   * Ports and stored pods agree: every stored pod gets its port; ports of pods
   * that are not stored, and claims no stored pod asks for, go once older
   * than `graceMs`.
   */
  async reconcile(stored: readonly StoredPort[], graceMs: number): Promise<PortReconcile> {
    await this.ports();
    const result: PortReconcile = { written: [], released: [], claimsReleased: [], conflicts: [] };
    const byPod = new Map(stored.map((s) => [s.pod, s]));
    for (const s of stored) {
      try {
        if ((await this.program(s)) === "written") result.written.push(s.pod);
      } catch (err) {
        result.conflicts.push(`${s.pod}: ${(err as Error).message}`);
      }
    }
    const now = Date.now();

    const gone = this.owned().filter((p) => {
      if (!p.on || now - p.since < graceMs) return false;
      const asked = byPod.get(p.pod);
      if (!asked) return true;
      return p.on === CLAIMS_SWITCH && !(p.uid === "" || p.uid === asked.uid);
    });
    if (gone.length) {
      await this.northbound.transact(NB, gone.map(unlinkPort));
      for (const p of gone) (p.on === CLAIMS_SWITCH ? result.claimsReleased : result.released).push(p.pod);
    }
    if (
      result.written.length ||
      result.released.length ||
      result.claimsReleased.length ||
      result.conflicts.length
    )
      this.log.info({ event: "ports-reconciled", ...result }, "logical switch ports reconciled");
    return result;
  }
}
