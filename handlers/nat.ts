/**
 * NAT rows for pods' EIP and SNAT addresses on the cluster router (seed 003).
 * The transaction that writes a pod's row also holds its address: a `wait`
 * fails when another row already has it, so two pods (through one replica or
 * several) can never both get one EIP. Rows we write carry the pod in
 * external_ids; no other NAT row is ever changed.
 */
import type { Logger } from "pino";
import {
  AlreadyTakenError,
  ConnectionClosedError,
  RequestTimeoutError,
  namedUuid,
  op,
  TimedOutError,
  type Claim,
  type Operation,
  type OvsdbClient,
  type Row,
} from "ovsdb-client";
import { ANNOTATION, annotationField } from "../webhooks/annotations.js";
import { sameNat, type NatRow, type NatWant } from "../webhooks/gateway.js";
import type { Intent } from "../webhooks/verdict.js";
import { IntentRefused, type IntentHandler } from "./intents.js";

const NB = "OVN_Northbound";

/** external_ids keys of our NAT rows. */
export const NAT_IDS = {
  owner: "ovn-admission.io/owner",
  pod: "ovn-admission.io/pod",
  /** When the row was written (ms since the epoch): young rows of pods the view has not seen yet are left alone. */
  since: "ovn-admission.io/since",
} as const;
const OWNER = "nat";

const COLUMNS = [
  "_uuid",
  "type",
  "external_ip",
  "logical_ip",
  "logical_port",
  "external_mac",
  "external_ids",
];

export interface OwnedNat extends NatRow {
  uuid: string;
  pod: string;
  since: number;
}

function ownedOf(row: Row): OwnedNat {
  const ids = row.external_ids as Record<string, string>;
  return {
    uuid: String(row._uuid),
    pod: ids[NAT_IDS.pod] ?? "",
    since: Number(ids[NAT_IDS.since] ?? 0),
    type: row.type as NatRow["type"],
    external_ip: String(row.external_ip),
    logical_ip: String(row.logical_ip),
    logical_port: (row.logical_port as string | null) ?? null,
    external_mac: (row.external_mac as string | null) ?? null,
  };
}

/** What an address is called in a denial: the annotation a user edits. */
function fieldOf(row: NatRow): string {
  return annotationField(row.type === "snat" ? ANNOTATION.snat : ANNOTATION.eip);
}

class PodRowsChanged extends Error {
  override name = "PodRowsChanged";
}

export type NatOutcome = "unchanged" | "written" | "released";

export interface NatReconcile {
  written: string[];
  released: string[];
  conflicts: string[];
  /** Pods whose row is in place: the caller marks them routed. */
  programmed: NatWant[];
}

export class NatHandler {
  constructor(
    private readonly northbound: OvsdbClient,
    private readonly router: string,
    private readonly log: Logger,
    /** Called once a pod's row is in place (to set `ovn.kubernetes.io/routed`). */
    private readonly onProgrammed: (want: NatWant) => void = () => undefined,
  ) {}

  get intents(): Record<string, IntentHandler> {
    return { nat: (intent: Intent) => this.ensure(intent.spec as unknown as NatWant).then(() => undefined) };
  }

  /** Our NAT rows, all or one pod's. */
  async owned(pod?: string): Promise<OwnedNat[]> {
    const ids: Record<string, string> = { [NAT_IDS.owner]: OWNER };
    if (pod) ids[NAT_IDS.pod] = pod;
    const [selected] = await this.northbound.transact(NB, [
      op.select("NAT", [["external_ids", "includes", ids]], COLUMNS),
    ]);
    return (selected?.rows ?? []).map(ownedOf);
  }

  /**
   * Makes the pod's NAT row what `want` says: written (holding the address),
   * moved, or released. Throws IntentRefused naming the holder when the
   * address is taken. `known`: the pod's rows as the caller just read them
   * (the transaction's wait still checks they are current).
   */
  async ensure(want: NatWant, known?: OwnedNat[]): Promise<NatOutcome> {
    // Read again when another writer for the same pod (a second replica, a reconcile) changed its rows
    // between read and write, or when the connection was lost (a RAFT leader change): a commit that
    // happened is then found, one that did not is made.
    for (let attempt = 1; ; attempt++) {
      try {
        // Rows the caller just read serve the first attempt; a retry reads again.
        return await this.ensureOnce(want, attempt === 1 ? known : undefined);
      } catch (err) {
        const lost = err instanceof ConnectionClosedError || err instanceof RequestTimeoutError;
        if (!(err instanceof PodRowsChanged || lost) || attempt >= 5) throw err;
        if (lost) await this.northbound.connect({ timeoutMs: 3_000 });
      }
    }
  }

  private async ensureOnce(want: NatWant, known: OwnedNat[] | undefined): Promise<NatOutcome> {
    const current = known ?? (await this.owned(want.pod));
    if (want.row && current.length === 1 && sameNat(current[0] as OwnedNat, want.row)) {
      this.onProgrammed(want);
      return "unchanged";
    }
    if (!want.row && current.length === 0) return "unchanged";
    const compared = ["type", "external_ip", "logical_ip"] as const;
    const operations: Operation[] = [
      // A router that is not there would leave the new row unreferenced, and OVSDB would drop it silently.
      op.wait("Logical_Router", [["name", "==", this.router]], ["name"], "!=", [], 0),
      // The pod's rows are still those just read.
      op.wait(
        "NAT",
        [["external_ids", "includes", { [NAT_IDS.owner]: OWNER, [NAT_IDS.pod]: want.pod }]],
        [...compared],
        "==",
        current.map((r) => Object.fromEntries(compared.map((c) => [c, r[c]]))),
        0,
      ),
    ];
    if (current.length > 0) {
      operations.push(
        op.mutate(
          "Logical_Router",
          [["name", "==", this.router]],
          [["nat", "delete", current.map((r) => r.uuid)]],
        ),
      );
    }
    const claims: Claim[] = [];
    if (want.row) {
      const notOurs: Claim["where"] = [["external_ids", "excludes", { [NAT_IDS.pod]: want.pod }]];
      // An EIP is nobody else's, not even a shared SNAT address; an SNAT address is shared, but never someone's EIP.
      claims.push(
        want.row.type === "dnat_and_snat"
          ? { table: "NAT", values: { external_ip: want.row.external_ip }, where: notOurs }
          : {
              table: "NAT",
              values: { external_ip: want.row.external_ip, type: "dnat_and_snat" },
              where: notOurs,
            },
      );
      const row: Row = {
        type: want.row.type,
        external_ip: want.row.external_ip,
        logical_ip: want.row.logical_ip,
        logical_port: want.row.logical_port ?? null,
        external_mac: want.row.external_mac ?? null,
        external_ids: {
          [NAT_IDS.owner]: OWNER,
          [NAT_IDS.pod]: want.pod,
          [NAT_IDS.since]: String(Date.now()),
        },
      };
      operations.push(
        op.insert("NAT", row, { uuidName: "nat" }),
        op.mutate("Logical_Router", [["name", "==", this.router]], [["nat", "insert", [namedUuid("nat")]]]),
      );
    }
    try {
      await this.northbound.claim(NB, claims, operations);
    } catch (err) {
      if (err instanceof AlreadyTakenError && want.row) throw await this.refusal(want);
      if (err instanceof TimedOutError && err.index === claims.length + 1) throw new PodRowsChanged(want.pod);
      if (err instanceof TimedOutError && err.index === claims.length) {
        throw new IntentRefused(
          `logical router ${this.router} does not exist in OVN Northbound (made by the CNI; see --cluster-router)`,
        );
      }
      throw err;
    }
    if (want.row) {
      this.log.info(
        { event: "nat-written", pod: want.pod, ...want.row, moved: current.length > 0 },
        "NAT row written",
      );
      this.onProgrammed(want);
      return "written";
    }
    this.log.info({ event: "nat-released", pod: want.pod, rows: current.length }, "NAT rows released");
    return "released";
  }

  /** Who holds the address `want` lost: a pod (from our row) or a row someone else made. */
  private async refusal(want: NatWant): Promise<IntentRefused> {
    const row = want.row as NatRow;
    const [selected] = await this.northbound.transact(NB, [
      op.select("NAT", [["external_ip", "==", row.external_ip]], COLUMNS),
    ]);
    const holders = (selected?.rows ?? []).map(ownedOf).filter((h) => h.pod !== want.pod);
    const holder = holders.find((h) => h.type === "dnat_and_snat") ?? holders[0];
    const what = row.type === "dnat_and_snat" ? "EIP" : "SNAT address";
    if (!holder) return new IntentRefused(`${fieldOf(row)}: ${row.external_ip} was just taken; try again`);
    const as = holder.type === "dnat_and_snat" ? "EIP" : "SNAT address";
    const by = holder.pod
      ? `pod ${holder.pod}`
      : `a NAT row not made by ovn-admission (${holder.type} ${holder.external_ip} -> ${holder.logical_ip})`;
    return new IntentRefused(
      `${fieldOf(row)}: ${row.external_ip} cannot be this pod's ${what}: it is already the ${as} of ${by}`,
    );
  }

  /**
   * Makes NAT rows and pods agree: every pod in `wanted` gets its row, every
   * row of ours whose pod is not wanted goes. A row written less than
   * `graceMs` ago is neither moved nor released: the view may not show the
   * admission that wrote it yet.
   */
  async reconcile(wanted: readonly NatWant[], graceMs: number): Promise<NatReconcile> {
    const result: NatReconcile = { written: [], released: [], conflicts: [], programmed: [] };
    const owned = await this.owned();
    const byPod = new Map<string, OwnedNat[]>();
    for (const row of owned) byPod.set(row.pod, [...(byPod.get(row.pod) ?? []), row]);
    const wantedPods = new Set(wanted.map((w) => w.pod));
    const now = Date.now();
    // A row written in the last graceMs may be newer than the view (another replica just admitted a change): leave it.
    const young = (rows: OwnedNat[]) => rows.some((r) => now - r.since < graceMs);
    for (const want of wanted) {
      const rows = byPod.get(want.pod) ?? [];
      if (want.row && rows.length === 1 && sameNat(rows[0] as OwnedNat, want.row)) {
        result.programmed.push(want);
        continue;
      }
      if (young(rows)) continue;
      try {
        const outcome = await this.ensure(want, rows);
        if (outcome === "written") result.written.push(want.pod);
        if (outcome === "released") result.released.push(want.pod);
      } catch (err) {
        result.conflicts.push(`${want.pod}: ${(err as Error).message}`);
      }
    }
    for (const [pod, rows] of byPod) {
      if (wantedPods.has(pod) || young(rows)) continue;
      await this.ensure({ pod }, rows);
      result.released.push(pod);
    }
    if (result.written.length || result.released.length || result.conflicts.length) {
      this.log.info(
        { event: "nat-reconciled", ...result, programmed: result.programmed.length },
        "NAT reconciled",
      );
    }
    return result;
  }
}
