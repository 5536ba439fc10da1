/**
 * Each node's Open_vSwitch database, as seed 000 describes it:
 * `external_ids:ovn-encap-ip` holds every encap IP (the default first) and
 * `ovn-encap-ip-default` the default; a pod Interface of a plane subnet gets
 * `external_ids:encap-ip`. Only those keys are ever written. A database that
 * does not answer is retried until it does.
 */
import type { Logger } from "pino";
import { portNameOf } from "../domain/logical-ports.js";
import type { NetworkModel } from "../domain/settings.js";
import {
  OvsdbClient,
  indexBy,
  op,
  TimedOutError,
  type DatabaseCache,
  type Row,
  type SslFiles,
} from "ovsdb-client";
import type { ClusterView } from "../domain/view.js";
import { ENCAP_IP_ANNOTATION } from "../domain/planes.js";

const DB = "Open_vSwitch";

export class EncapError extends Error {
  override name = "EncapError";
}

/** What `external_ids` must hold: the default encap IP first, then each plane's, without repeats. */
export function planEncapIps(
  externalIds: Readonly<Record<string, string>>,
  internalIP: string | undefined,
  planes: Readonly<Record<string, string>>,
): { encapIps: string; defaultIp: string } {
  const defaultIp = externalIds["ovn-encap-ip-default"] || internalIP;
  if (!defaultIp) {
    throw new EncapError("no default encap IP: ovn-encap-ip-default is unset and the node has no InternalIP");
  }
  return { encapIps: [...new Set([defaultIp, ...Object.values(planes)])].join(","), defaultIp };
}

/** What a node's Open_vSwitch must hold, from its stored Node. */
export interface EncapSpec {
  node: string;
  internalIP: string | undefined;
  planes: Readonly<Record<string, string>>;
}

export interface NodeDatabaseSettings {
  /** A remote with {nodeIP} and {nodeName}. */
  template: string;
  overrides: Record<string, string>;
  ssl: SslFiles | undefined;
}

/**
 * One client per node's Open_vSwitch database, made when first needed. A
 * database is reached only through a Node the API server stored (its name and
 * InternalIP as the view holds them), never through an address a request
 * named: a forged review cannot make the service dial anywhere.
 */
export class NodeDatabases {
  private readonly clients = new Map<string, OvsdbClient>();

  constructor(
    private readonly settings: NodeDatabaseSettings,
    private readonly view: ClusterView,
    private readonly log: Logger,
  ) {}

  remoteOf(node: string): string {
    const stored = this.view.node(node);
    if (!stored) {
      throw new EncapError(
        `node ${node} is not a stored Node: its Open_vSwitch database is only reached through a Node the API server stored`,
      );
    }
    const override = this.settings.overrides[node];
    if (override) return override;
    if (this.settings.template.includes("{nodeIP}") && !stored.internalIP) {
      throw new EncapError(
        `node ${node} has no InternalIP to reach its Open_vSwitch database (${this.settings.template})`,
      );
    }
    return this.settings.template
      .replaceAll("{nodeIP}", stored.internalIP ?? "")
      .replaceAll("{nodeName}", node);
  }

  client(node: string): OvsdbClient {
    const remote = this.remoteOf(node);
    const existing = this.clients.get(node);
    if (existing && existing.remotes.map((r) => r.text).join(",") === remote) return existing;
    existing?.close();
    const client = new OvsdbClient({
      remote,
      database: DB,
      requestTimeoutMs: 5_000,
      connectTimeoutMs: 2_000,
      backoff: { minMs: 500, maxMs: 10_000 },
      ...(this.settings.ssl ? { ssl: this.settings.ssl } : {}),
    });
    client.on("state", (state, detail) =>
      this.log.debug(
        { event: "node-ovsdb-state", node, state, remote: detail.remote, error: detail.error?.message },
        "node Open_vSwitch database",
      ),
    );
    void client.connect().catch(() => undefined);
    this.clients.set(node, client);
    return client;
  }

  /** Nodes a client was made for (what the service has dialled). */
  dialled(): string[] {
    return [...this.clients.keys()].sort();
  }

  /** Closes the client of a node that is gone. */
  forget(node: string): void {
    this.clients.get(node)?.close();
    this.clients.delete(node);
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}

function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const fail = () => reject(new EncapError("stopped waiting (admission deadline)"));
    if (signal.aborted) fail();
    signal.addEventListener("abort", fail, { once: true });
  });
}

/** A pod's OVS interface and the encap IP its stored object records. */
export interface InterfaceWant {
  node: string;
  ifaceId: string;
  encapIp: string;
}

export class EncapHandler {
  private readonly nodes = new Map<string, EncapSpec>();
  private readonly failing = new Set<string>();
  private readonly interfaces = new Map<string, Map<string, string>>();
  private readonly watchers = new Map<string, Promise<DatabaseCache>>();
  private readonly retry: NodeJS.Timeout;
  private retrying: Promise<void> | undefined;

  constructor(
    private readonly databases: NodeDatabases,
    private readonly view: ClusterView,
    private readonly log: Logger,
    retryMs = 5_000,
    /** Names a pod's interface (`iface-id`) as its logical switch port. */
    private readonly model: NetworkModel = "kube-ovn",
  ) {
    this.retry = setInterval(() => {
      // One pass at a time: a node database that does not answer must not pile passes up.
      this.retrying ??= this.retryFailing().finally(() => (this.retrying = undefined));
    }, retryMs);
    this.retry.unref();
  }

  /** Nodes whose database has not taken their encap IPs yet. */
  pending(): string[] {
    return [...this.failing].sort();
  }

  async programNode(spec: EncapSpec, signal?: AbortSignal): Promise<void> {
    this.nodes.set(spec.node, spec);
    this.failing.add(spec.node);
    const work = this.applyNode(spec);
    await (signal ? Promise.race([work, untilAborted(signal)]) : work);
  }

  async programInterface(want: InterfaceWant, signal?: AbortSignal): Promise<void> {
    let wanted = this.interfaces.get(want.node);
    if (!wanted) this.interfaces.set(want.node, (wanted = new Map()));
    wanted.set(want.ifaceId, want.encapIp);
    const work = this.watch(want.node).then((cache) => this.applyInterface(want.node, cache, want.ifaceId));
    await (signal ? Promise.race([work, untilAborted(signal)]) : work);
  }

  /**
   * Makes every node's Open_vSwitch agree with the view again: each node's
   * planes, each pod's recorded encap IP. Run once the view is synced (so a
   * restart loses nothing admitted) and periodically; writes only what differs.
   */
  async resync(): Promise<{ nodes: number; interfaces: number; failed: string[] }> {
    const failed: string[] = [];
    const nodes = this.view.nodesWithPlanes();
    for (const node of nodes) {
      try {
        await this.programNode({
          node: node.name,
          internalIP: node.internalIP,
          planes: this.view.planesOf(node.name),
        });
      } catch (err) {
        failed.push(`${node.name}: ${(err as Error).message}`);
      }
    }
    const pods = this.view.podsWithEncapIp();
    for (const pod of pods) {
      const want = {
        node: pod.nodeName,
        ifaceId: portNameOf(pod.namespace, pod.name, this.model),
        encapIp: pod.annotations[ENCAP_IP_ANNOTATION] as string,
      };
      await this.programInterface(want).catch((err: Error) => failed.push(`${pod.key}: ${err.message}`));
    }
    this.log.info(
      { event: "encap-resync", nodes: nodes.length, interfaces: pods.length, failed },
      "node Open_vSwitch databases resynced from the view",
    );
    return { nodes: nodes.length, interfaces: pods.length, failed };
  }

  /** A deleted Node: nothing more is programmed or retried for it. */
  forgetNode(node: string): void {
    this.nodes.delete(node);
    this.failing.delete(node);
    this.interfaces.delete(node);
    this.watchers.delete(node);
    this.databases.forget(node);
  }

  close(): void {
    clearInterval(this.retry);
  }

  private async applyNode(spec: EncapSpec): Promise<void> {
    const client = this.databases.client(spec.node);
    await client.connect({ timeoutMs: 5_000 });
    for (let attempt = 1; ; attempt++) {
      const [selected] = await client.transact(DB, [
        op.select("Open_vSwitch", [], ["_uuid", "external_ids"]),
      ]);
      const row = selected?.rows?.[0];
      if (!row)
        throw new EncapError(
          `node ${spec.node}: its Open_vSwitch database has no Open_vSwitch row (ovs-vsctl init)`,
        );
      const externalIds = row.external_ids as Record<string, string>;
      const plan = planEncapIps(externalIds, spec.internalIP, spec.planes);
      if (
        externalIds["ovn-encap-ip"] === plan.encapIps &&
        externalIds["ovn-encap-ip-default"] === plan.defaultIp
      )
        break;
      const self: [string, "==", string] = ["_uuid", "==", String(row._uuid)];
      try {
        await client.transact(DB, [
          // Commit only if nobody changed external_ids since we read them.
          op.wait("Open_vSwitch", [self], ["external_ids"], "==", [{ external_ids: externalIds }], 0),
          op.mutate(
            "Open_vSwitch",
            [self],
            [
              ["external_ids", "delete", ["ovn-encap-ip", "ovn-encap-ip-default"]],
              [
                "external_ids",
                "insert",
                { "ovn-encap-ip": plan.encapIps, "ovn-encap-ip-default": plan.defaultIp },
              ],
            ],
          ),
        ]);
        this.log.info(
          { event: "encap-programmed", node: spec.node, encapIps: plan.encapIps, default: plan.defaultIp },
          "node encap IPs programmed",
        );
        break;
      } catch (err) {
        if (!(err instanceof TimedOutError) || attempt >= 3) throw err;
      }
    }
    // Only the latest wish clears the node: an older one finishing late must not.
    if (this.nodes.get(spec.node) === spec) this.failing.delete(spec.node);
  }

  /** A deleted pod: its interface is no longer followed. */
  forgetInterface(node: string, ifaceId: string): void {
    const wanted = this.interfaces.get(node);
    wanted?.delete(ifaceId);
    if (wanted?.size === 0) this.interfaces.delete(node);
  }

  /** Interfaces whose encap IP is wanted, by node (tests, diagnostics). */
  followed(): Record<string, string[]> {
    return Object.fromEntries(
      [...this.interfaces].map(([node, wanted]) => [node, [...wanted.keys()].sort()]),
    );
  }

  private async retryFailing(): Promise<void> {
    // Every wanted interface is looked at again: an event missed or a write that failed is caught up here.
    for (const [node, wanted] of this.interfaces) {
      try {
        const cache = await this.watch(node);
        for (const ifaceId of wanted.keys()) await this.applyInterface(node, cache, ifaceId);
      } catch (err) {
        this.log.debug(
          { event: "interface-encap-retry-failed", node, error: (err as Error).message },
          "node database still not taking interface encap IPs",
        );
      }
    }
    for (const node of this.failing) {
      const spec = this.nodes.get(node);
      if (!spec) continue;
      try {
        await this.applyNode(spec);
        this.log.info({ event: "encap-retry-applied", node }, "node encap IPs applied after retry");
      } catch (err) {
        this.log.debug(
          { event: "encap-retry-failed", node, error: (err as Error).message },
          "node database still not taking encap IPs",
        );
      }
    }
  }

  /** A monitor of the node's Interface table: a pod interface gets its encap IP when it appears, and again when recreated. */
  private watch(node: string): Promise<DatabaseCache> {
    let watcher = this.watchers.get(node);
    if (!watcher) {
      const client = this.databases.client(node);
      watcher = client.connect({ timeoutMs: 5_000 }).then(async () => {
        const cache = await client.cache(DB, {
          Interface: { columns: ["name", "external_ids"], indexes: { ifaceId: indexBy.mapKey("iface-id") } },
        });
        const onRow = (table: string, row: Row): void => {
          const ifaceId = (row.external_ids as Record<string, string> | undefined)?.["iface-id"];
          if (table === "Interface" && ifaceId && this.interfaces.get(node)?.has(ifaceId)) {
            void this.applyInterface(node, cache, ifaceId).catch((err: Error) =>
              this.log.warn(
                { event: "interface-encap-failed", node, ifaceId, error: err.message },
                "cannot set encap-ip",
              ),
            );
          }
        };
        cache.on("insert", onRow);
        cache.on("update", onRow);
        return cache;
      });
      watcher.catch(() => this.watchers.delete(node));
      this.watchers.set(node, watcher);
    }
    return watcher;
  }

  private async applyInterface(node: string, cache: DatabaseCache, ifaceId: string): Promise<void> {
    const encapIp = this.interfaces.get(node)?.get(ifaceId);
    if (!encapIp) return;
    for (const row of cache.table("Interface").lookup("ifaceId", ifaceId)) {
      if ((row.external_ids as Record<string, string>)["encap-ip"] === encapIp) continue;
      const client = this.databases.client(node);
      await client.transact(DB, [
        op.mutate(
          "Interface",
          [["_uuid", "==", String(row._uuid)]],
          [
            ["external_ids", "delete", ["encap-ip"]],
            ["external_ids", "insert", { "encap-ip": encapIp }],
          ],
        ),
      ]);
      this.log.info(
        { event: "interface-encap-set", node, ifaceId, encapIp, interface: row.name },
        "pod interface encap IP set",
      );
    }
  }
}
