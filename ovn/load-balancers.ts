/**
 * Services as OVN load balancers (domain/services.ts plans them), written
 * from the stored Service and its EndpointSlices: one Load_Balancer per
 * Service and protocol, in the cluster's load balancer group, which every
 * node switch holds, so a Service or an endpoint change is one transaction
 * whatever the number of nodes. Rows are marked ours and name their Service;
 * nothing else is touched.
 */
import type { Logger } from "pino";
import { namedUuid, op, type Operation, type OvsdbClient, type Row } from "ovsdb-client";
import type { LoadBalancerPlan, StoredService } from "../domain/services.js";
import { byName, CLUSTER_LB_GROUP, LOAD_BALANCER_IDS, NB, OWNER, OWNER_KEY } from "./rows.js";

const OWNED = { [OWNER_KEY]: OWNER.loadBalancer };

const sameMap = (a: unknown, b: Record<string, string>): boolean => {
  const entries = (m: Record<string, string>) => JSON.stringify(Object.entries(m).sort());
  return entries((a ?? {}) as Record<string, string>) === entries(b);
};

export class LoadBalancers {
  constructor(
    private readonly northbound: OvsdbClient,
    private readonly log: Logger,
  ) {}

  private async owned(service?: string): Promise<Row[]> {
    const [found] = await this.northbound.transact(NB, [
      op.select(
        "Load_Balancer",
        [["external_ids", "includes", service ? { ...OWNED, [LOAD_BALANCER_IDS.service]: service } : OWNED]],
        ["_uuid", "name", "vips", "protocol", "options", "external_ids"],
      ),
    ]);
    return (found?.rows ?? []) as Row[];
  }

  /** Makes one Service's load balancers what `plans` say (none: they go); the operations, without running them. */
  private opsFor(
    stored: StoredService,
    plans: readonly LoadBalancerPlan[],
    current: readonly Row[],
  ): Operation[] {
    const ops: Operation[] = [];
    const group = byName(CLUSTER_LB_GROUP);
    const wanted = new Map(plans.map((p) => [p.name, p]));
    const gone = current.filter((row) => !wanted.has(String(row.name))).map((row) => String(row._uuid));
    if (gone.length)
      ops.push(
        op.mutate("Load_Balancer_Group", [group], [["load_balancer", "delete", gone]]),
        ...gone.map((uuid) => op.delete("Load_Balancer", [["_uuid", "==", uuid]])),
      );
    plans.forEach((plan, i) => {
      const row = current.find((r) => r.name === plan.name);
      const externalIds = {
        ...OWNED,
        [LOAD_BALANCER_IDS.kind]: "Service",
        [LOAD_BALANCER_IDS.service]: stored.service,
        [LOAD_BALANCER_IDS.uid]: stored.uid,
      };
      if (!row) {
        ops.push(
          op.insert(
            "Load_Balancer",
            {
              name: plan.name,
              protocol: plan.protocol,
              vips: plan.vips,
              options: plan.options,
              external_ids: externalIds,
            },
            { uuidName: `lb${i}` },
          ),
          op.mutate("Load_Balancer_Group", [group], [["load_balancer", "insert", [namedUuid(`lb${i}`)]]]),
        );
      } else if (!sameMap(row.vips, plan.vips) || !sameMap(row.options, plan.options)) {
        ops.push(
          op.update("Load_Balancer", [["_uuid", "==", String(row._uuid)]], {
            vips: plan.vips,
            options: plan.options,
            external_ids: externalIds,
          }),
        );
      }
    });
    return ops;
  }

  /** One Service's load balancers from its stored object and endpoints; "unchanged" writes nothing. */
  async program(stored: StoredService, plans: readonly LoadBalancerPlan[]): Promise<"written" | "unchanged"> {
    return this.apply(stored, plans, await this.owned(stored.service));
  }

  private async apply(
    stored: StoredService,
    plans: readonly LoadBalancerPlan[],
    current: readonly Row[],
  ): Promise<"written" | "unchanged"> {
    const ops = this.opsFor(stored, plans, current);
    if (ops.length === 0) return "unchanged";
    await this.northbound.transact(NB, ops);
    this.log.info(
      {
        event: "load-balancers-programmed",
        service: stored.service,
        uid: stored.uid,
        resourceVersion: stored.resourceVersion,
        // Counts, not the backends: a Service of thousands of endpoints is one log line still.
        vips: plans.reduce((n, p) => n + Object.keys(p.vips).length, 0),
        backends: plans.reduce(
          (n, p) => n + Object.values(p.vips).reduce((m, b) => m + (b ? b.split(",").length : 0), 0),
          0,
        ),
      },
      plans.length ? "service load balancers programmed" : "service load balancers removed",
    );
    return "written";
  }

  /** Every Service's load balancers, read once: those of Services no longer stored go. The Services changed. */
  async reconcile(
    wanted: ReadonlyArray<{ stored: StoredService; plans: readonly LoadBalancerPlan[] }>,
  ): Promise<string[]> {
    const byService = new Map<string, Row[]>();
    for (const row of await this.owned()) {
      const service = (row.external_ids as Record<string, string>)[LOAD_BALANCER_IDS.service] ?? "";
      byService.set(service, [...(byService.get(service) ?? []), row]);
    }
    const stored = new Set(wanted.map((w) => w.stored.service));
    const gone = [...byService.keys()]
      .filter((service) => !stored.has(service))
      .map((service) => ({ stored: { service, uid: "", resourceVersion: "" }, plans: [] }));
    const changed: string[] = [];
    for (const w of [...wanted, ...gone])
      if ((await this.apply(w.stored, w.plans, byService.get(w.stored.service) ?? [])) === "written")
        changed.push(w.stored.service);
    return changed;
  }
}
