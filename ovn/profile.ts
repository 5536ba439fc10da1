/**
 * Whose rows the Northbound holds, and whether the service's profile
 * (`--alongside`) agrees with it. Kube-OVN marks what kube-ovn-controller
 * writes with `external_ids:vendor=kube-ovn` (its routers and switches:
 * ovn-cluster, join, ovn-default and every Subnet's). Beside it the service
 * writes none of those; on its own it programs what it admits. A profile that
 * contradicts the database would either write rows another controller owns,
 * or program nothing where nothing else does: it is refused with what was
 * seen and which flag to set.
 */
import { op, type OvsdbClient } from "ovsdb-client";
import type { Alongside } from "../domain/settings.js";
import { NB } from "./rows.js";

/** Kube-OVN's mark on the rows kube-ovn-controller writes. */
export const KUBE_OVN_VENDOR: Readonly<Record<string, string>> = { vendor: "kube-ovn" };

/** Kube-OVN's routers and switches in the Northbound, as "logical router ovn-cluster". */
export async function kubeOvnRowsIn(northbound: OvsdbClient): Promise<string[]> {
  const where: [string, "includes", Record<string, string>] = ["external_ids", "includes", KUBE_OVN_VENDOR];
  const [routers, switches] = await northbound.transact(NB, [
    op.select("Logical_Router", [where], ["name"]),
    op.select("Logical_Switch", [where], ["name"]),
  ]);
  const names = (rows: Array<Record<string, unknown>> | undefined) =>
    (rows ?? []).map((r) => String(r.name)).sort();
  return [
    ...names(routers?.rows).map((n) => `logical router ${n}`),
    ...names(switches?.rows).map((n) => `logical switch ${n}`),
  ];
}

/** Why the profile contradicts the rows seen (`kubeOvnRows`, from kubeOvnRowsIn), or undefined when it agrees. */
export function profileMismatch(
  alongside: Alongside | undefined,
  kubeOvnRows: readonly string[],
  remote: string,
): string | undefined {
  const seen = `${kubeOvnRows.slice(0, 4).join(", ")}${kubeOvnRows.length > 4 ? ` and ${kubeOvnRows.length - 4} more` : ""}`;
  if (!alongside && kubeOvnRows.length)
    return (
      `OVN Northbound at ${remote} holds Kube-OVN's rows (external_ids:vendor=kube-ovn: ${seen}): ` +
      `kube-ovn-controller programs this Northbound; start with --alongside kube-ovn ` +
      `(OVN_ADMISSION_ALONGSIDE=kube-ovn), so that the service claims addresses and never writes its rows`
    );
  if (alongside === "kube-ovn" && !kubeOvnRows.length)
    return (
      `--alongside kube-ovn, but OVN Northbound at ${remote} has no router or switch with external_ids:vendor=kube-ovn ` +
      `(no ovn-cluster or join of Kube-OVN's): is --nb-remote Kube-OVN's Northbound (tcp:ovn-nb.kube-system:6641)? ` +
      `Without Kube-OVN, leave --alongside unset and the service programs what it admits`
    );
  return undefined;
}

/** The profile, checked against the Northbound at start and again at every reconnect. */
export class NorthboundProfile {
  /** What contradicts the profile, from the last check; undefined when it agrees. */
  mismatch: string | undefined;

  constructor(
    private readonly northbound: OvsdbClient,
    private readonly alongside: Alongside | undefined,
    private readonly remote: string,
  ) {}

  async check(): Promise<string | undefined> {
    this.mismatch = profileMismatch(this.alongside, await kubeOvnRowsIn(this.northbound), this.remote);
    return this.mismatch;
  }
}
