/**
 * A monitor-fed replica of chosen tables and columns, with indexes and
 * change events. It is fed `update2`/`update3` row updates (RFC 7047 as
 * extended by ovsdb-server): a snapshot replaces the whole content and emits
 * exactly the differences, so after a reconnect the cache holds no stale row
 * and misses none.
 */
import { EventEmitter } from "node:events";
import type { DatabaseSchema, TableSchema } from "./schema.js";
import { decodeAtom, decodeValue, defaultValue, wireSetElements } from "./values.js";
import type { Atom, Row, Value } from "./protocol.js";

/** Computes the keys a row is filed under in an index (none, one or many). */
export type IndexKey = ((row: Row) => string | string[] | undefined) & {
  /** The one column the keys come from, when known: a change elsewhere leaves the index as it is. */
  column?: string;
  /** The keys are the column's set elements (as strings): a set diff refiles just what changed. */
  elements?: boolean;
};

/** What an update2 `modify` changed: the columns, and for set columns the elements added and removed. */
export interface RowChange {
  columns: Set<string>;
  sets: Map<string, { added: Atom[]; removed: Atom[] }>;
}

/** Common index keys. */
export const indexBy = {
  /** A column's value; each element for a set column. */
  column(name: string): IndexKey {
    const key: IndexKey = (row) => {
      const v = row[name];
      if (v === null || v === undefined) return undefined;
      if (Array.isArray(v)) return v.map(String);
      if (typeof v === "object") return undefined;
      return String(v);
    };
    key.column = name;
    key.elements = true;
    return key;
  },
  /** One key of a map column, `external_ids` by default. */
  mapKey(key: string, column = "external_ids"): IndexKey {
    return Object.assign(
      (row: Row) => {
        const map = row[column];
        if (!map || typeof map !== "object" || Array.isArray(map)) return undefined;
        const v = (map as Record<string, Atom>)[key];
        return v === undefined ? undefined : String(v);
      },
      { column },
    );
  },
};

export interface TableSpec {
  /** Columns to replicate; all when omitted. */
  columns?: string[];
  indexes?: Record<string, IndexKey>;
}

export type CacheSpec = Record<string, TableSpec>;

/** Row updates as ovsdb-server sends them in update2/update3 and monitor_cond replies. */
export type TableUpdates2 = Record<string, Record<string, RowUpdate2>>;
export interface RowUpdate2 {
  initial?: Record<string, unknown>;
  insert?: Record<string, unknown>;
  modify?: Record<string, unknown>;
  delete?: null;
}

export class TableCache {
  private readonly rows = new Map<string, Row>();
  private readonly indexes = new Map<string, Map<string, Set<string>>>();
  /** The monitored columns at their defaults: ovsdb-server leaves default values out of updates. */
  readonly blank: Readonly<Row>;

  constructor(
    readonly name: string,
    readonly schema: TableSchema,
    private readonly indexKeys: Record<string, IndexKey>,
    columns: string[] | undefined,
  ) {
    for (const indexName of Object.keys(indexKeys)) this.indexes.set(indexName, new Map());
    const blank: Row = {};
    for (const column of schema.columns.values()) {
      if (column.name.startsWith("_")) continue;
      if (columns && !columns.includes(column.name)) continue;
      // Frozen: every row shares these until an update gives it its own value.
      blank[column.name] = Object.freeze(defaultValue(column)) as Row[string];
    }
    this.blank = blank;
  }

  get size(): number {
    return this.rows.size;
  }

  get(uuid: string): Row | undefined {
    return this.rows.get(uuid);
  }

  all(): IterableIterator<Row> {
    return this.rows.values();
  }

  /** Rows filed under `key` in index `indexName`. */
  lookup(indexName: string, key: string): Row[] {
    const index = this.indexes.get(indexName);
    if (!index) {
      throw new Error(
        `table ${this.name} has no index ${JSON.stringify(indexName)} (indexes: ${[...this.indexes.keys()].join(", ") || "none"})`,
      );
    }
    const uuids = index.get(key);
    if (!uuids) return [];
    return [...uuids].map((u) => this.rows.get(u) as Row);
  }

  /** The one row filed under `key`, or undefined. */
  find(indexName: string, key: string): Row | undefined {
    return this.lookup(indexName, key)[0];
  }

  /** Number of distinct keys in an index. */
  indexSize(indexName: string): number {
    return this.indexes.get(indexName)?.size ?? 0;
  }

  /** @internal */
  put(uuid: string, row: Row | undefined, change?: RowChange): Row | undefined {
    const old = this.rows.get(uuid);
    if (old && row) {
      this.rows.set(uuid, row);
      this.reindex(uuid, old, row, change);
      return old;
    }
    if (old) this.unindex(uuid, old);
    if (row) {
      this.rows.set(uuid, row);
      this.index(uuid, row);
    } else {
      this.rows.delete(uuid);
    }
    return old;
  }

  /** @internal */
  uuids(): string[] {
    return [...this.rows.keys()];
  }

  private keysOf(keyOf: IndexKey, row: Row): string[] {
    const k = keyOf(row);
    return k === undefined ? [] : Array.isArray(k) ? k : [k];
  }

  private index(uuid: string, row: Row): void {
    for (const [name, keyOf] of Object.entries(this.indexKeys)) {
      const index = this.indexes.get(name) as Map<string, Set<string>>;
      for (const key of this.keysOf(keyOf, row)) {
        let set = index.get(key);
        if (!set) index.set(key, (set = new Set()));
        set.add(uuid);
      }
    }
  }

  /**
   * A changed row is refiled only under the keys that changed: a router's
   * `nat` set of thousands of rows gains one element per claim, and
   * refiling all of them each time made a run of claims quadratic.
   */
  private reindex(uuid: string, old: Row, row: Row, change?: RowChange): void {
    for (const [name, keyOf] of Object.entries(this.indexKeys)) {
      const index = this.indexes.get(name) as Map<string, Set<string>>;
      if (change && keyOf.column !== undefined) {
        if (!change.columns.has(keyOf.column)) continue;
        const diff = keyOf.elements ? change.sets.get(keyOf.column) : undefined;
        if (diff) {
          for (const key of diff.removed.map(String)) {
            const set = index.get(key);
            if (!set) continue;
            set.delete(uuid);
            if (set.size === 0) index.delete(key);
          }
          for (const key of diff.added.map(String)) {
            let set = index.get(key);
            if (!set) index.set(key, (set = new Set()));
            set.add(uuid);
          }
          continue;
        }
      }
      const before = this.keysOf(keyOf, old);
      const after = this.keysOf(keyOf, row);
      if (before.length === 1 && after.length === 1 && before[0] === after[0]) continue;
      const kept = new Set(after);
      const had = new Set(before);
      for (const key of before) {
        if (kept.has(key)) continue;
        const set = index.get(key);
        if (!set) continue;
        set.delete(uuid);
        if (set.size === 0) index.delete(key);
      }
      for (const key of after) {
        if (had.has(key)) continue;
        let set = index.get(key);
        if (!set) index.set(key, (set = new Set()));
        set.add(uuid);
      }
    }
  }

  private unindex(uuid: string, row: Row): void {
    for (const [name, keyOf] of Object.entries(this.indexKeys)) {
      const index = this.indexes.get(name) as Map<string, Set<string>>;
      for (const key of this.keysOf(keyOf, row)) {
        const set = index.get(key);
        if (!set) continue;
        set.delete(uuid);
        if (set.size === 0) index.delete(key);
      }
    }
  }
}

export interface CacheEvents {
  insert: [table: string, row: Row];
  update: [table: string, row: Row, old: Row];
  delete: [table: string, row: Row];
  /** A snapshot was applied (first sync, or resync after reconnect). */
  synced: [];
}

function sameValue(a: Value | undefined, b: Value | undefined): boolean {
  if (a === b) return true;
  return JSON.stringify(a) === JSON.stringify(b);
}

function sameRow(a: Row, b: Row): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (!sameValue(a[k], b[k])) return false;
  return true;
}

export class DatabaseCache extends EventEmitter<CacheEvents> {
  private readonly tables = new Map<string, TableCache>();
  private syncedOnce = false;

  constructor(
    readonly schema: DatabaseSchema,
    readonly spec: CacheSpec,
  ) {
    super();
    for (const [name, tableSpec] of Object.entries(spec)) {
      const tableSchema = schema.tables.get(name);
      if (!tableSchema) throw new Error(`cannot cache ${name}: database ${schema.name} has no such table`);
      this.tables.set(name, new TableCache(name, tableSchema, tableSpec.indexes ?? {}, tableSpec.columns));
    }
  }

  get synced(): boolean {
    return this.syncedOnce;
  }

  table(name: string): TableCache {
    const t = this.tables.get(name);
    if (!t) throw new Error(`table ${name} is not cached (cached: ${[...this.tables.keys()].join(", ")})`);
    return t;
  }

  /** Replaces the whole content with a snapshot, emitting only what changed. */
  applySnapshot(updates: TableUpdates2): void {
    for (const [name, table] of this.tables) {
      const fresh = updates[name] ?? {};
      const seen = new Set<string>();
      for (const [uuid, update] of Object.entries(fresh)) {
        const wireRow = update.initial ?? update.insert;
        if (!wireRow) continue;
        seen.add(uuid);
        const row = this.decode(table, uuid, wireRow);
        const old = table.get(uuid);
        if (old && sameRow(old, row)) continue;
        table.put(uuid, row);
        if (old) this.emit("update", name, row, old);
        else this.emit("insert", name, row);
      }
      for (const uuid of table.uuids()) {
        if (seen.has(uuid)) continue;
        const old = table.put(uuid, undefined) as Row;
        this.emit("delete", name, old);
      }
    }
    this.syncedOnce = true;
    this.emit("synced");
  }

  /** Applies incremental row updates. */
  applyUpdate(updates: TableUpdates2): void {
    for (const [name, rows] of Object.entries(updates)) {
      const table = this.tables.get(name);
      if (!table) continue;
      for (const [uuid, update] of Object.entries(rows)) {
        const full = update.initial ?? update.insert;
        if (full) {
          const row = this.decode(table, uuid, full);
          const old = table.put(uuid, row);
          if (old) this.emit("update", name, row, old);
          else this.emit("insert", name, row);
        } else if (update.modify) {
          const old = table.get(uuid);
          if (!old) continue; // modify of a row we never saw: the next snapshot brings it
          const change: RowChange = { columns: new Set(), sets: new Map() };
          const row = this.modify(table.schema, old, update.modify, change);
          table.put(uuid, row, change);
          this.emit("update", name, row, old);
        } else if ("delete" in update) {
          const old = table.put(uuid, undefined);
          if (old) this.emit("delete", name, old);
        }
      }
    }
  }

  private decode(table: TableCache, uuid: string, wireRow: Record<string, unknown>): Row {
    const row: Row = { _uuid: uuid, ...table.blank };
    for (const [column, w] of Object.entries(wireRow))
      row[column] = decodeValue(table.schema.columns.get(column), w);
    return row;
  }

  /**
   * Applies an update2 `modify`: a diff (toggle these elements) for a set or
   * map; the new value for a scalar, and for an optional value (a set of at
   * most one): ovsdb-server sends `"enabled": true` there, not a diff.
   */
  private modify(schema: TableSchema, old: Row, diff: Record<string, unknown>, change: RowChange): Row {
    const row: Row = { ...old };
    for (const [name, w] of Object.entries(diff)) {
      change.columns.add(name);
      const column = schema.columns.get(name);
      if (!column || column.kind === "scalar" || column.kind === "optional") {
        row[name] = decodeValue(column, w);
      } else if (column.kind === "map") {
        const next: Record<string, Atom> = { ...((old[name] as Record<string, Atom> | undefined) ?? {}) };
        const pairs = Array.isArray(w) && w[0] === "map" ? (w[1] as Array<[unknown, unknown]>) : [];
        for (const [wk, wv] of pairs) {
          const k = String(decodeAtom(wk));
          const v = decodeAtom(wv);
          if (k in next && next[k] === v) delete next[k];
          else next[k] = v;
        }
        row[name] = next;
      } else {
        const current = old[name];
        const before: Atom[] =
          current === null || current === undefined
            ? []
            : Array.isArray(current)
              ? (current as Atom[])
              : [current as Atom];
        const toggled = wireSetElements(w).map(decodeAtom);
        const added: Atom[] = [];
        const removed: Atom[] = [];
        // A few elements toggled in a large set (a port added to a switch): a copy and a search each, no rehash of the set.
        let next: Atom[];
        if (toggled.length <= 16) {
          next = before.slice();
          for (const e of toggled) {
            const at = next.indexOf(e);
            if (at >= 0) {
              next[at] = next[next.length - 1] as Atom;
              next.pop();
              removed.push(e);
            } else {
              next.push(e);
              added.push(e);
            }
          }
        } else {
          const elements = new Set<Atom>(before);
          for (const e of toggled) {
            if (elements.delete(e)) removed.push(e);
            else {
              elements.add(e);
              added.push(e);
            }
          }
          next = [...elements];
        }
        row[name] = next;
        change.sets.set(name, { added, removed });
      }
    }
    return row;
  }
}
