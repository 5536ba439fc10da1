/** Database schemas (RFC 7047 §3.2), parsed into a shape the encoder can check against. */
import { SchemaError } from "./errors.js";

export type AtomicType = "integer" | "real" | "boolean" | "string" | "uuid";

export interface BaseType {
  type: AtomicType;
  /** Allowed values, when the schema restricts them. */
  enum?: ReadonlyArray<string | number | boolean>;
  minInteger?: number;
  maxInteger?: number;
  minReal?: number;
  maxReal?: number;
  minLength?: number;
  maxLength?: number;
  refTable?: string;
  refType?: "strong" | "weak";
}

/**
 * How a column's values look to callers: a `scalar` is one atom, an
 * `optional` an atom or null, a `set` an array, a `map` a record.
 */
export type ColumnKind = "scalar" | "optional" | "set" | "map";

export interface ColumnSchema {
  name: string;
  key: BaseType;
  value?: BaseType;
  min: number;
  max: number;
  kind: ColumnKind;
  mutable: boolean;
  ephemeral: boolean;
}

export interface TableSchema {
  name: string;
  columns: ReadonlyMap<string, ColumnSchema>;
  isRoot: boolean;
  maxRows?: number;
  indexes: ReadonlyArray<ReadonlyArray<string>>;
}

export interface DatabaseSchema {
  name: string;
  version: string;
  tables: ReadonlyMap<string, TableSchema>;
  /** The schema as the server sent it. */
  raw: unknown;
}

const ATOMIC_TYPES = new Set<AtomicType>(["integer", "real", "boolean", "string", "uuid"]);

type JsonObject = Record<string, unknown>;

function isObject(x: unknown): x is JsonObject {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function parseEnum(value: unknown): Array<string | number | boolean> {
  if (Array.isArray(value) && value[0] === "set" && Array.isArray(value[1])) {
    return value[1] as Array<string | number | boolean>;
  }
  return [value as string | number | boolean];
}

function parseBaseType(json: unknown, where: string): BaseType {
  if (typeof json === "string") {
    if (!ATOMIC_TYPES.has(json as AtomicType)) throw new SchemaError(`${where}: unknown atomic type ${json}`);
    return { type: json as AtomicType };
  }
  if (!isObject(json) || typeof json.type !== "string" || !ATOMIC_TYPES.has(json.type as AtomicType)) {
    throw new SchemaError(`${where}: malformed base type ${JSON.stringify(json)}`);
  }
  const base: BaseType = { type: json.type as AtomicType };
  if (json.enum !== undefined) base.enum = parseEnum(json.enum);
  for (const key of ["minInteger", "maxInteger", "minReal", "maxReal", "minLength", "maxLength"] as const) {
    if (typeof json[key] === "number") base[key] = json[key] as number;
  }
  if (typeof json.refTable === "string") base.refTable = json.refTable;
  if (json.refType === "weak" || json.refType === "strong") base.refType = json.refType;
  else if (base.refTable) base.refType = "strong";
  return base;
}

function parseColumn(name: string, json: unknown, table: string): ColumnSchema {
  if (!isObject(json)) throw new SchemaError("malformed column", table, name);
  const type = json.type;
  let key: BaseType;
  let value: BaseType | undefined;
  let min = 1;
  let max = 1;
  if (isObject(type) && type.key !== undefined) {
    key = parseBaseType(type.key, `${table}.${name}`);
    if (type.value !== undefined) value = parseBaseType(type.value, `${table}.${name}`);
    if (typeof type.min === "number") min = type.min;
    if (type.max === "unlimited") max = Infinity;
    else if (typeof type.max === "number") max = type.max;
  } else {
    key = parseBaseType(type, `${table}.${name}`);
  }
  const kind: ColumnKind = value
    ? "map"
    : min === 1 && max === 1
      ? "scalar"
      : min === 0 && max === 1
        ? "optional"
        : "set";
  const column: ColumnSchema = {
    name,
    key,
    min,
    max,
    kind,
    mutable: json.mutable !== false,
    ephemeral: json.ephemeral === true,
  };
  if (value) column.value = value;
  return column;
}

const UUID_COLUMN = (name: string): ColumnSchema => ({
  name,
  key: { type: "uuid" },
  min: 1,
  max: 1,
  kind: "scalar",
  mutable: false,
  ephemeral: false,
});

/** Parses a schema as returned by `get_schema`. */
export function parseSchema(json: unknown): DatabaseSchema {
  if (!isObject(json) || typeof json.name !== "string" || !isObject(json.tables)) {
    throw new SchemaError("malformed database schema: expected an object with name and tables");
  }
  const tables = new Map<string, TableSchema>();
  for (const [tableName, tableJson] of Object.entries(json.tables)) {
    if (!isObject(tableJson) || !isObject(tableJson.columns)) {
      throw new SchemaError("malformed table schema", tableName);
    }
    const columns = new Map<string, ColumnSchema>();
    columns.set("_uuid", UUID_COLUMN("_uuid"));
    columns.set("_version", UUID_COLUMN("_version"));
    for (const [columnName, columnJson] of Object.entries(tableJson.columns)) {
      columns.set(columnName, parseColumn(columnName, columnJson, tableName));
    }
    const table: TableSchema = {
      name: tableName,
      columns,
      isRoot: tableJson.isRoot === true,
      indexes: Array.isArray(tableJson.indexes) ? (tableJson.indexes as string[][]) : [],
    };
    if (typeof tableJson.maxRows === "number") table.maxRows = tableJson.maxRows;
    tables.set(tableName, table);
  }
  return {
    name: json.name,
    version: typeof json.version === "string" ? json.version : "",
    tables,
    raw: json,
  };
}

/** Looks a table up, or throws a SchemaError that lists the tables there are. */
export function tableOf(schema: DatabaseSchema, table: string): TableSchema {
  const found = schema.tables.get(table);
  if (!found) {
    throw new SchemaError(
      `database ${schema.name} has no such table (tables: ${[...schema.tables.keys()].sort().join(", ")})`,
      table,
    );
  }
  return found;
}

/** Looks a column up, or throws a SchemaError naming the table and column. */
export function columnOf(table: TableSchema, column: string): ColumnSchema {
  const found = table.columns.get(column);
  if (!found) {
    const names = [...table.columns.keys()].filter((c) => !c.startsWith("_")).sort();
    throw new SchemaError(`no such column (columns: ${names.join(", ")})`, table.name, column);
  }
  return found;
}
