/**
 * Monitors (RFC 7047 §4.1.5, and ovsdb-server's monitor_cond and
 * monitor_cond_since): the client's registry of what it monitors, started
 * again on every connection it adopts, so caches resync after a reconnect
 * (with only the missed changes where the server can send them).
 */
import { OvsdbError, RpcError } from "./errors.js";
import type { TableUpdates2 } from "./cache.js";
import type { Condition } from "./protocol.js";
import { tableOf, type DatabaseSchema } from "./schema.js";
import { encodeValue } from "./values.js";
import type { RpcConnection } from "./wire/jsonrpc.js";

/** Receives a monitor's content: a snapshot replaces everything, an update changes some rows. */
export interface MonitorListener {
  snapshot(updates: TableUpdates2): void;
  update(updates: TableUpdates2): void;
}

export interface MonitorTableRequest {
  columns?: string[];
  where?: Condition[];
}

interface MonitorState {
  id: string;
  database: string;
  tables: Record<string, MonitorTableRequest>;
  listener: MonitorListener;
  lastTxnId: string;
}

const ZERO_UUID = "00000000-0000-0000-0000-000000000000";

export class Monitors {
  private readonly active = new Map<string, MonitorState>();
  private nextId = 1;
  private supportsMonitorSince = true;

  add(
    database: string,
    tables: Record<string, MonitorTableRequest>,
    listener: MonitorListener,
  ): MonitorState {
    const monitor: MonitorState = {
      id: `m${this.nextId++}`,
      database,
      tables,
      listener,
      lastTxnId: ZERO_UUID,
    };
    this.active.set(monitor.id, monitor);
    return monitor;
  }

  delete(id: string): void {
    this.active.delete(id);
  }

  all(): Iterable<MonitorState> {
    return this.active.values();
  }

  /** Starts `monitor` on `connection` (whose schema `schema` is): its snapshot, or the changes since its last transaction. */
  async start(connection: RpcConnection, schema: DatabaseSchema, monitor: MonitorState): Promise<void> {
    const requests: Record<string, unknown> = {};
    for (const [name, request] of Object.entries(monitor.tables)) {
      const table = tableOf(schema, name);
      const wireRequest: Record<string, unknown> = {};
      if (request.columns) {
        for (const c of request.columns) {
          if (!table.columns.has(c)) throw new OvsdbError(`cannot monitor ${name}.${c}: no such column`);
        }
        wireRequest.columns = request.columns;
      }
      if (request.where) {
        wireRequest.where = request.where.map(([c, fn, v]) => {
          const column = table.columns.get(c);
          if (!column) throw new OvsdbError(`cannot monitor ${name} where ${c}: no such column`);
          return [c, fn, encodeValue(table, column, v, { anySize: true })];
        });
      }
      requests[name] = [wireRequest];
    }
    const apply = (method: string, params: unknown[]): void => {
      if (method === "update3") {
        monitor.lastTxnId = params[1] as string;
        monitor.listener.update(params[2] as TableUpdates2);
      } else if (method === "update2") {
        monitor.listener.update(params[1] as TableUpdates2);
      }
    };
    // Updates that arrive before the reply is applied (one read can hold both) wait for it:
    // applied first, they would be overwritten by the older snapshot.
    let early: Array<[string, unknown[]]> | undefined = [];
    connection.onNotification((method, params) => {
      if (params[0] !== monitor.id || !this.active.has(monitor.id)) return;
      if (early) early.push([method, params]);
      else apply(method, params);
    });
    const release = (): void => {
      const waiting = early ?? [];
      early = undefined;
      if (this.active.has(monitor.id)) for (const [method, params] of waiting) apply(method, params);
    };
    if (this.supportsMonitorSince) {
      try {
        const reply = (await connection.request("monitor_cond_since", [
          monitor.database,
          monitor.id,
          requests,
          monitor.lastTxnId,
        ])) as [boolean, string, TableUpdates2];
        const [found, lastTxnId, updates] = reply;
        monitor.lastTxnId = lastTxnId;
        if (found) monitor.listener.update(updates);
        else monitor.listener.snapshot(updates);
        release();
        return;
      } catch (err) {
        if (!(err instanceof RpcError) || !/unknown method/i.test(err.message)) throw err;
        this.supportsMonitorSince = false;
      }
    }
    const updates = (await connection.request("monitor_cond", [
      monitor.database,
      monitor.id,
      requests,
    ])) as TableUpdates2;
    monitor.listener.snapshot(updates);
    release();
  }
}
