/**
 * NAT rows for pods' EIP and SNAT addresses (seed 003), in two steps
 * (ADR 0003, ADR 0004):
 *
 * - claim, at admission: a row holding the external address is added to the
 *   claims router, a disabled router with no ports, so it routes nothing. The
 *   transaction's `wait` fails when another row already has the address, so
 *   two pods (through one replica or several) can never both get one EIP.
 *   Admission only ever adds a claim; it never moves or removes a row.
 * - program, from the pod the API server stored: the pod's claim (or, when
 *   there is none, a new claim) becomes its row on the cluster router, with
 *   the logical IP, port and MAC of the stored pod, and the uid and
 *   resourceVersion it came from. Rows the stored pod no longer asks for go.
 *
 * A claim that no stored pod asks for is released after the grace. Rows we
 * write carry the pod in external_ids; no other NAT row is ever changed.
 */
import type { Logger } from "pino";
import { CLAIMS_ROUTER, createIfAbsent, NAT_IDS, NB, OWNER as OWNERS } from "./rows.js";
import {
  ConnectionClosedError,
  RequestTimeoutError,
  indexBy,
  namedUuid,
  op,
  TimedOutError,
  unlessTaken,
  type Claim,
  type Condition,
  type DatabaseCache,
  type Operation,
  type OvsdbClient,
  type Row,
} from "ovsdb-client";
import { ANNOTATION, annotationField } from "../domain/annotations.js";
import { sameNat, type NatAddress, type NatClaim, type NatRow, type NatWant } from "../domain/nat.js";
import { type Intent, IntentRefused } from "../domain/intents.js";
import { ClaimDeferred, GroupCommit, transactGuarded } from "./group-commit.js";
import type { IntentHandler } from "./intent-runner.js";

const OWNER = OWNERS.nat;

const COLUMNS = [
  "_uuid",
  "type",
  "external_ip",
  "logical_ip",
  "logical_port",
  "external_mac",
  "external_ids",
];

/** A NAT row of ours and where it is: routing on the cluster router, or a claim. */
export interface OwnedNat extends NatRow {
  uuid: string;
  pod: string;
  uid: string;
  since: number;
  on: "router" | "claims" | "nowhere";
}

/** Part of another transaction: waits first, writes after, and what a failed wait (by index) means. */
export interface ClaimPart {
  waits: Operation[];
  /** What it takes (for group commit: two claims of one key never share a transaction). */
  keys: string[];
  /** Its writes; `name` makes their uuid-names unique in a shared transaction. */
  writes: (name: string) => Operation[];
  explain: (index: number) => Promise<Error>;
  /** Called once the transaction committed. */
  done: () => void;
}

/** The stored pod a row is programmed from. */
export interface StoredPod {
  uid: string;
  resourceVersion: string;
}

/** What an address is called in a denial: the annotation a user edits. */
function fieldOf(address: NatAddress): string {
  return annotationField(address.type === "snat" ? ANNOTATION.snat : ANNOTATION.eip);
}

const sameAddress = (a: NatAddress, b: NatAddress): boolean =>
  a.type === b.type && a.external_ip === b.external_ip;

/** The unspecified address of the family: what a claim's logical_ip holds until a stored pod gives the real one. */
const unspecified = (external: string): string => (external.includes(":") ? "::" : "0.0.0.0");

/**
 * The columns of another pod's NAT row that make `holds` taken: an EIP is
 * nobody else's, not even a shared SNAT address; an SNAT address is shared,
 * but never someone's EIP. The claim's `wait` and the cache's early refusal
 * both ask this.
 */
function conflictingWith(holds: NatAddress): Record<string, string> {
  return holds.type === "dnat_and_snat"
    ? { external_ip: holds.external_ip }
    : { external_ip: holds.external_ip, type: "dnat_and_snat" };
}

/** A claim's group-commit key: two claims of one address never share a transaction. */
const natKey = (holds: NatAddress): string => `nat|${holds.external_ip}`;

/** The pod's rows changed between read and write (another writer, or a cache behind): read again and retry. */
export class PodRowsChanged extends Error {
  override name = "PodRowsChanged";
}

export type NatOutcome = "unchanged" | "held" | "claimed" | "written" | "released" | "waiting";

export interface NatReconcile {
  written: string[];
  released: string[];
  conflicts: string[];
  /** Claims no stored pod asked for within the grace, released. */
  claimsReleased: string[];
  /** Pods whose row is in place: the caller marks them routed. */
  programmed: NatWant[];
}

/** A pod as the reconciler sees it in the view: what it asks for, and which object asks. */
export interface StoredNatWant {
  want: NatWant;
  stored: StoredPod;
}

function ownedOf(row: Row, on: OwnedNat["on"]): OwnedNat {
  const external = row.external_ids as Record<string, string>;
  return {
    uuid: String(row._uuid),
    pod: external[NAT_IDS.pod] ?? "",
    uid: external[NAT_IDS.uid] ?? "",
    since: Number(external[NAT_IDS.since] ?? 0),
    on,
    type: row.type as NatRow["type"],
    external_ip: String(row.external_ip),
    logical_ip: String(row.logical_ip),
    logical_port: (row.logical_port as string | null) ?? null,
    external_mac: (row.external_mac as string | null) ?? null,
  };
}

export class NatHandler {
  private watching: Promise<DatabaseCache> | undefined;
  /** Claims that arrive together share a transaction, each under its own waits. */
  private readonly claims: GroupCommit;

  constructor(
    private readonly northbound: OvsdbClient,
    private readonly router: string,
    private readonly log: Logger,
    /** Called once a pod's row is in place (to set `ovn.kubernetes.io/routed`). */
    private readonly onProgrammed: (want: NatWant) => void = () => undefined,
  ) {
    this.claims = new GroupCommit(northbound, NB);
  }

  /** Admission's one NAT intent: hold the address (never a routing change). */
  get intents(): Record<string, IntentHandler> {
    return { "nat-claim": (intent: Intent) => this.claim(intent.spec as NatClaim).then(() => undefined) };
  }

  /** Makes the claims router when it is missing; two replicas at once make one. */
  async ensureClaimsRouter(): Promise<void> {
    const made = await createIfAbsent(this.northbound, "Logical_Router", {
      name: CLAIMS_ROUTER,
      enabled: false,
      external_ids: { [NAT_IDS.owner]: OWNER },
    });
    if (made)
      this.log.info({ event: "claims-router-created", router: CLAIMS_ROUTER }, "claims router created");
  }

  /** Our NAT rows, all or one pod's, each with the router it is on. */
  async owned(pod?: string): Promise<OwnedNat[]> {
    const ids: Record<string, string> = { [NAT_IDS.owner]: OWNER };
    if (pod) ids[NAT_IDS.pod] = pod;
    const [selected, live, claims] = await this.northbound.transact(NB, [
      op.select("NAT", [["external_ids", "includes", ids]], COLUMNS),
      op.select("Logical_Router", [["name", "==", this.router]], ["name", "nat"]),
      op.select("Logical_Router", [["name", "==", CLAIMS_ROUTER]], ["name", "nat"]),
    ]);
    const on = new Map<string, OwnedNat["on"]>();
    for (const router of [...(live?.rows ?? []), ...(claims?.rows ?? [])]) {
      const where =
        router.name === this.router ? "router" : router.name === CLAIMS_ROUTER ? "claims" : undefined;
      if (!where) continue;
      for (const uuid of (router.nat as string[] | null) ?? []) on.set(String(uuid), where);
    }
    return (selected?.rows ?? []).map((row: Row) => ownedOf(row, on.get(String(row._uuid)) ?? "nowhere"));
  }

  /**
   * A monitor of our NAT rows (by pod) and of which router holds each: a
   * claim reads the pod's rows without a round trip, and without fetching
   * the routers' whole nat sets (which grow with every pod). A cache that is
   * behind is caught by the pod-rows `wait` of the write, and the retry
   * reads from the database.
   */
  private rowsCache(): Promise<DatabaseCache> {
    this.watching ??= this.northbound.cache(NB, {
      NAT: {
        columns: COLUMNS.filter((c) => c !== "_uuid"),
        indexes: { pod: indexBy.mapKey(NAT_IDS.pod), externalIp: indexBy.column("external_ip") },
      },
      Logical_Router: { columns: ["name", "nat"], indexes: { nat: indexBy.column("nat") } },
    });
    this.watching.catch(() => (this.watching = undefined));
    return this.watching;
  }

  /** The pod's rows as the cache has them (see rowsCache). */
  async cachedOwned(pod: string): Promise<OwnedNat[]> {
    const cache = await this.rowsCache();
    return cache
      .table("NAT")
      .lookup("pod", pod)
      .filter((row) => (row.external_ids as Record<string, string>)[NAT_IDS.owner] === OWNER)
      .map((row) => {
        const [router] = cache.table("Logical_Router").lookup("nat", String(row._uuid));
        const on =
          router?.name === this.router ? "router" : router?.name === CLAIMS_ROUTER ? "claims" : "nowhere";
        return ownedOf(row, on);
      });
  }

  /**
   * Holds `claim.holds` for the pod, on the claims router: "held" when one of
   * the pod's rows already has it, "claimed" when a claim was added. Throws
   * IntentRefused naming the holder when another pod (or a row not ours) has
   * it. Nothing routes differently afterwards.
   */
  claim(claim: NatClaim): Promise<NatOutcome> {
    let fresh = false;
    return this.retrying(claim.pod, async () => {
      for (let round = 1; ; round++) {
        if (!fresh) {
          // Held by another pod, as far as the cache knows: refused without a transaction (contended
          // addresses cost a lookup); the wait below stays the guarantee when the cache is behind.
          const cache = await this.rowsCache();
          const rows = cache.table("NAT").lookup("externalIp", claim.holds.external_ip);
          const conflicting = Object.entries(conflictingWith(claim.holds));
          const taken = rows.some(
            (row) =>
              (row.external_ids as Record<string, string>)[NAT_IDS.pod] !== claim.pod &&
              conflicting.every(([column, value]) => row[column] === value),
          );
          if (taken) throw this.refusalFrom(claim.pod, claim.holds, rows);
        }
        // The cache first; after a retry (the pod's rows changed, a reply was lost), the database.
        const current = fresh ? await this.owned(claim.pod) : await this.cachedOwned(claim.pod);
        if (current.some((r) => r.on !== "nowhere" && sameAddress(r, claim.holds))) return "held";
        const guards = this.guardsFor(claim.pod, claim.holds, current, CLAIMS_ROUTER);
        try {
          await this.claims.submit({
            keys: [natKey(claim.holds)],
            build: (name) => ({ waits: guards.waits, writes: this.claimWrites(claim, `nat_${name}`) }),
            explain: guards.explain,
          });
        } catch (err) {
          // Another claim of the address went first: look again, as if this one had come just after it.
          if (err instanceof ClaimDeferred && round < 20) continue;
          fresh = true;
          throw err;
        }
        this.log.info(
          { event: "nat-claimed", pod: claim.pod, uid: claim.uid, ...claim.holds },
          "address claimed",
        );
        return "claimed";
      }
    });
  }

  /**
   * Makes the pod's row on the cluster router what its stored object asks
   * for. The pod's claim of the address becomes the row (a pod admitted while
   * we were away claims it now); rows it no longer asks for are removed. A
   * pod that holds no address loses all its rows and claims. Throws
   * IntentRefused naming the holder when the address is another's.
   * `known`: the pod's rows as the caller just read them.
   */
  program(want: NatWant, stored: StoredPod, known?: OwnedNat[]): Promise<NatOutcome> {
    let first = true;
    return this.retrying(want.pod, async () => {
      const current = first && known ? known : await this.owned(want.pod);
      first = false;
      return this.programOnce(want, stored, current);
    });
  }

  /** Removes every row and claim of a pod that is gone. */
  release(pod: string, known?: OwnedNat[]): Promise<NatOutcome> {
    return this.program({ pod }, { uid: "", resourceVersion: "" }, known);
  }

  private async programOnce(want: NatWant, stored: StoredPod, current: OwnedNat[]): Promise<NatOutcome> {
    const holds = want.holds;
    if (!holds) {
      if (current.length === 0) return "unchanged";
      await this.transactForPod(want.pod, current, this.unlink(current));
      this.log.info({ event: "nat-released", pod: want.pod, rows: current.length }, "NAT rows released");
      return "released";
    }
    const row = want.row;
    // No IP of that family yet: the claim waits for the pod's next version.
    if (!row) return "waiting";
    const routing = current.filter((r) => r.on === "router");
    if (routing.length === 1 && sameNat(routing[0] as OwnedNat, row)) {
      this.onProgrammed(want);
      return "unchanged";
    }
    const ids = {
      [NAT_IDS.owner]: OWNER,
      [NAT_IDS.pod]: want.pod,
      [NAT_IDS.uid]: stored.uid,
      [NAT_IDS.resourceVersion]: stored.resourceVersion,
      [NAT_IDS.since]: String(Date.now()),
    };
    const columns = {
      logical_ip: row.logical_ip,
      logical_port: row.logical_port ?? null,
      external_mac: row.external_mac ?? null,
    };
    const held = current.find(
      (r) => r.on === "claims" && sameAddress(r, holds) && (r.uid === "" || r.uid === stored.uid),
    );
    const operations: Operation[] = [
      // A router that is not there would leave the row unreferenced, and OVSDB would drop it silently.
      op.wait("Logical_Router", [["name", "==", this.router]], ["name"], "!=", [], 0),
      ...this.unlink(routing),
    ];
    if (held) {
      const self: [string, "==", string] = ["_uuid", "==", held.uuid];
      operations.push(
        op.update("NAT", [self], { ...columns, external_ids: ids }),
        op.mutate("Logical_Router", [["name", "==", CLAIMS_ROUTER]], [["nat", "delete", [held.uuid]]]),
        op.mutate("Logical_Router", [["name", "==", this.router]], [["nat", "insert", [held.uuid]]]),
      );
      await this.transactForPod(want.pod, current, operations);
    } else {
      operations.push(
        op.insert(
          "NAT",
          { type: row.type, external_ip: row.external_ip, ...columns, external_ids: ids },
          {
            uuidName: "nat",
          },
        ),
        op.mutate("Logical_Router", [["name", "==", this.router]], [["nat", "insert", [namedUuid("nat")]]]),
      );
      await this.take(want.pod, holds, current, this.router, operations);
    }
    this.log.info(
      {
        event: "nat-written",
        pod: want.pod,
        uid: stored.uid,
        resourceVersion: stored.resourceVersion,
        ...row,
        from: held ? "claim" : "stored pod",
        moved: routing.length > 0,
      },
      "NAT row written from the stored pod",
    );
    this.onProgrammed(want);
    return "written";
  }

  /** Operations that take the pod's rows off whichever router holds them (OVSDB then drops the rows). */
  private unlink(rows: readonly OwnedNat[]): Operation[] {
    const operations: Operation[] = [];
    for (const [router, on] of [
      [this.router, "router"],
      [CLAIMS_ROUTER, "claims"],
    ] as const) {
      const uuids = rows.filter((r) => r.on === on).map((r) => r.uuid);
      if (uuids.length)
        operations.push(op.mutate("Logical_Router", [["name", "==", router]], [["nat", "delete", uuids]]));
    }
    return operations;
  }

  /**
   * The pod's rows are still `current`; with `address`, only its rows of
   * that address. A claim guards just those: the one race it must lose is the
   * same pod's admission claiming the same address twice (two replicas, a
   * retry), and `external_ip ==` first lets ovsdb-server skip every other row
   * before it compares maps, where a scan of every row's external_ids halved
   * the claims a Northbound could take.
   */
  private podRowsUnchanged(pod: string, current: readonly OwnedNat[], address?: string): Operation {
    const compared = ["type", "external_ip", "logical_ip"] as const;
    const mine: Condition = ["external_ids", "includes", { [NAT_IDS.owner]: OWNER, [NAT_IDS.pod]: pod }];
    const rows = address ? current.filter((r) => r.external_ip === address) : current;
    return op.wait(
      "NAT",
      address ? [["external_ip", "==", address], mine] : [mine],
      [...compared],
      "==",
      rows.map((r) => Object.fromEntries(compared.map((c) => [c, r[c]]))),
      0,
    );
  }

  private async transactForPod(
    pod: string,
    current: readonly OwnedNat[],
    operations: Operation[],
  ): Promise<void> {
    try {
      await this.northbound.transact(NB, [this.podRowsUnchanged(pod, current), ...operations]);
    } catch (err) {
      if (err instanceof TimedOutError && err.index === 0) throw new PodRowsChanged(pod);
      throw err;
    }
  }

  /** Runs `operations` only if no other pod's row (nor a row not ours) has the address, and `router` exists. */
  /**
   * The `wait`s under which a pod may take `holds` on `router`, and what a
   * failed one means: the address is another's (the holder named), the
   * router is missing, or the pod's rows changed meanwhile (retry).
   */
  private guardsFor(pod: string, holds: NatAddress, current: readonly OwnedNat[], router: string) {
    const notOurs: Claim["where"] = [["external_ids", "excludes", { [NAT_IDS.pod]: pod }]];
    const claim: Claim = { table: "NAT", values: conflictingWith(holds), where: notOurs };
    const waits: Operation[] = [
      unlessTaken(claim),
      op.wait("Logical_Router", [["name", "==", router]], ["name"], "!=", [], 0),
      this.podRowsUnchanged(pod, current, router === CLAIMS_ROUTER ? holds.external_ip : undefined),
    ];
    const explain = async (index: number): Promise<Error> => {
      if (index === 0) return this.refusal(pod, holds);
      if (index === 1)
        return new IntentRefused(
          router === CLAIMS_ROUTER
            ? `logical router ${CLAIMS_ROUTER} (where addresses are held) does not exist in OVN Northbound; it is made at start-up`
            : `logical router ${router} does not exist in OVN Northbound (made by the CNI; see --cluster-router)`,
        );
      return new PodRowsChanged(pod);
    };
    return { waits, explain };
  }

  private async take(
    pod: string,
    holds: NatAddress,
    current: readonly OwnedNat[],
    router: string,
    operations: Operation[],
  ): Promise<void> {
    const guards = this.guardsFor(pod, holds, current, router);
    await transactGuarded(this.northbound, NB, {
      build: () => ({ waits: guards.waits, writes: operations }),
      explain: guards.explain,
    });
  }

  /**
   * A claim as part of another transaction (the pod's port, ADR 0004): its
   * waits and writes, and what a failed wait means; undefined when the pod
   * already holds the address.
   */
  async claimPart(claim: NatClaim, fresh = false): Promise<ClaimPart | undefined> {
    const current = fresh ? await this.owned(claim.pod) : await this.cachedOwned(claim.pod);
    if (current.some((r) => r.on !== "nowhere" && sameAddress(r, claim.holds))) return undefined;
    const guards = this.guardsFor(claim.pod, claim.holds, current, CLAIMS_ROUTER);
    return {
      waits: guards.waits,
      keys: [natKey(claim.holds)],
      writes: (name) => this.claimWrites(claim, `nat_${name}`),
      explain: guards.explain,
      done: () =>
        this.log.info(
          { event: "nat-claimed", pod: claim.pod, uid: claim.uid, ...claim.holds, with: "port" },
          "address claimed",
        ),
    };
  }

  /** The claim row on the claims router: the address, and nothing it could route to. */
  private claimWrites(claim: NatClaim, uuidName = "nat"): Operation[] {
    const row: Row = {
      type: claim.holds.type,
      external_ip: claim.holds.external_ip,
      logical_ip: unspecified(claim.holds.external_ip),
      external_ids: {
        [NAT_IDS.owner]: OWNER,
        [NAT_IDS.pod]: claim.pod,
        [NAT_IDS.uid]: claim.uid,
        [NAT_IDS.since]: String(Date.now()),
      },
    };
    return [
      op.insert("NAT", row, { uuidName }),
      op.mutate(
        "Logical_Router",
        [["name", "==", CLAIMS_ROUTER]],
        [["nat", "insert", [namedUuid(uuidName)]]],
      ),
    ];
  }

  /**
   * Retries when another writer for the same pod (a second replica, a
   * reconcile) changed its rows between read and write, or when the
   * connection was lost (a RAFT leader change): a commit that happened is
   * then found, one that did not is made.
   */
  private async retrying(pod: string, once: () => Promise<NatOutcome>): Promise<NatOutcome> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await once();
      } catch (err) {
        const lost = err instanceof ConnectionClosedError || err instanceof RequestTimeoutError;
        if (!(err instanceof PodRowsChanged || lost) || attempt >= 5) throw err;
        if (lost) await this.northbound.connect({ timeoutMs: 3_000 });
        this.log.debug(
          { event: "nat-retry", pod, attempt, error: (err as Error).message },
          "NAT write retried",
        );
      }
    }
  }

  /** Who holds the address the pod lost: a pod (from our row or claim) or a row someone else made. */
  private async refusal(pod: string, holds: NatAddress): Promise<IntentRefused> {
    const [selected] = await this.northbound.transact(NB, [
      op.select("NAT", [["external_ip", "==", holds.external_ip]], COLUMNS),
    ]);
    return this.refusalFrom(pod, holds, selected?.rows ?? []);
  }

  /** The refusal naming who holds the address among `rows` (the NAT rows with that external IP). */
  private refusalFrom(pod: string, holds: NatAddress, rows: readonly Row[]): IntentRefused {
    const holders = rows
      .map((row: Row) => ({
        pod: (row.external_ids as Record<string, string>)[NAT_IDS.pod] ?? "",
        type: row.type as NatRow["type"],
        external_ip: String(row.external_ip),
        logical_ip: String(row.logical_ip),
      }))
      .filter((h) => h.pod !== pod);
    const holder = holders.find((h) => h.type === "dnat_and_snat") ?? holders[0];
    const what = holds.type === "dnat_and_snat" ? "EIP" : "SNAT address";
    if (!holder)
      return new IntentRefused(`${fieldOf(holds)}: ${holds.external_ip} was just taken; try again`);
    const as = holder.type === "dnat_and_snat" ? "EIP" : "SNAT address";
    const by = holder.pod
      ? `pod ${holder.pod}`
      : `a NAT row not made by ovn-admission (${holder.type} ${holder.external_ip} -> ${holder.logical_ip})`;
    return new IntentRefused(
      `${fieldOf(holds)}: ${holds.external_ip} cannot be this pod's ${what}: it is already the ${as} of ${by}`,
    );
  }

  /**
   * Makes NAT rows and stored pods agree: every pod in `wanted` gets its row
   * programmed from its stored object (but `claimsOnly`); rows of pods that are not wanted go;
   * claims that no stored pod asks for go. A row or claim made less than
   * `graceMs` ago is not released: its pod may not be in the view yet.
   */
  async reconcile(
    wanted: readonly StoredNatWant[],
    graceMs: number,
    /** Beside another control plane: its rows are its own; only our claims are kept or released. */
    claimsOnly = false,
  ): Promise<NatReconcile> {
    const result: NatReconcile = {
      written: [],
      released: [],
      conflicts: [],
      claimsReleased: [],
      programmed: [],
    };
    const owned = await this.owned();
    const byPod = new Map<string, OwnedNat[]>();
    for (const row of owned) byPod.set(row.pod, [...(byPod.get(row.pod) ?? []), row]);
    const wantedBy = new Map(wanted.map((w) => [w.want.pod, w]));
    const now = Date.now();
    const old = (r: OwnedNat) => now - r.since >= graceMs;
    for (const { want, stored } of claimsOnly ? [] : wanted) {
      const rows = byPod.get(want.pod) ?? [];
      const routing = rows.filter((r) => r.on === "router");
      if (want.row && routing.length === 1 && sameNat(routing[0] as OwnedNat, want.row)) {
        result.programmed.push(want);
        continue;
      }
      if (!want.row && routing.length === 0) continue;
      try {
        const outcome = await this.program(want, stored, rows);
        if (outcome === "written") result.written.push(want.pod);
        if (outcome === "released") result.released.push(want.pod);
      } catch (err) {
        result.conflicts.push(`${want.pod}: ${(err as Error).message}`);
      }
    }
    // Claims: kept while the stored pod (same uid, when the claim knows it) asks for the address.
    const staleClaims = owned.filter((r) => {
      if (r.on !== "claims" || !old(r)) return false;
      const asked = wantedBy.get(r.pod);
      const holds = asked?.want.holds;
      return !(holds && sameAddress(holds, r) && (r.uid === "" || r.uid === asked.stored.uid));
    });
    // Rows on the router whose pod no longer asks for any address.
    const orphans = owned.filter((r) => r.on !== "claims" && !wantedBy.has(r.pod) && old(r));
    const gone = [...staleClaims, ...orphans];
    if (gone.length) {
      // Only unlinks: a row the programmer moved meanwhile is simply not in the set any more.
      await this.northbound.transact(NB, this.unlink(gone));
      result.claimsReleased.push(...staleClaims.map((r) => `${r.pod} ${r.external_ip}`));
      result.released.push(...new Set(orphans.map((r) => r.pod)));
    }
    if (
      result.written.length ||
      result.released.length ||
      result.conflicts.length ||
      result.claimsReleased.length
    ) {
      this.log.info(
        { event: "nat-reconciled", ...result, programmed: result.programmed.length },
        "NAT reconciled",
      );
    }
    return result;
  }
}
