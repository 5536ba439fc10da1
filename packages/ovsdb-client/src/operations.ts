/**
 * Transaction operations (RFC 7047 §5.2) as plain data. Builders return
 * operations; one `transact` call encodes them against the schema, sends
 * them, and pairs each result with its operation.
 */
import { transactionError, SchemaError } from "./errors.js";
import { columnOf, tableOf, type DatabaseSchema, type TableSchema } from "./schema.js";
import { decodeRow, encodeValue } from "./values.js";
import type {
  AbortOperation,
  AssertOperation,
  CommentOperation,
  CommitOperation,
  Condition,
  ConditionFunction,
  DeleteOperation,
  InsertOperation,
  Mutation,
  MutateOperation,
  Operation,
  OperationResult,
  Row,
  SelectOperation,
  UpdateOperation,
  Value,
  WaitOperation,
} from "./protocol.js";

/** Builders for every operation type. */
export const op = {
  insert(table: string, row: Row, options: { uuidName?: string; uuid?: string } = {}): InsertOperation {
    return { op: "insert", table, row, ...options };
  },
  select(table: string, where: Condition[] = [], columns?: string[]): SelectOperation {
    return columns ? { op: "select", table, where, columns } : { op: "select", table, where };
  },
  update(table: string, where: Condition[], row: Row): UpdateOperation {
    return { op: "update", table, where, row };
  },
  mutate(table: string, where: Condition[], mutations: Mutation[]): MutateOperation {
    return { op: "mutate", table, where, mutations };
  },
  delete(table: string, where: Condition[]): DeleteOperation {
    return { op: "delete", table, where };
  },
  wait(
    table: string,
    where: Condition[],
    columns: string[],
    until: "==" | "!=",
    rows: Row[],
    timeout?: number,
  ): WaitOperation {
    return timeout === undefined
      ? { op: "wait", table, where, columns, until, rows }
      : { op: "wait", table, where, columns, until, rows, timeout };
  },
  commit(durable: boolean): CommitOperation {
    return { op: "commit", durable };
  },
  abort(): AbortOperation {
    return { op: "abort" };
  },
  comment(comment: string): CommentOperation {
    return { op: "comment", comment };
  },
  assert(lock: string): AssertOperation {
    return { op: "assert", lock };
  },
};

/** Shorthand for a condition on a column. */
export function where(column: string, fn: ConditionFunction, value: Value): Condition {
  return [column, fn, value];
}

const CONDITION_FUNCTIONS = new Set(["<", "<=", "==", "!=", ">=", ">", "includes", "excludes"]);
const MUTATORS = new Set(["+=", "-=", "*=", "/=", "%=", "insert", "delete"]);

function encodeRow(table: TableSchema, row: Row, forInsert: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(row)) {
    const column = columnOf(table, name);
    if (name.startsWith("_")) throw new SchemaError("is read-only", table.name, name);
    if (!forInsert && !column.mutable) throw new SchemaError("is immutable after insert", table.name, name);
    out[name] = encodeValue(table, column, value);
  }
  return out;
}

function encodeConditions(table: TableSchema, conditions: Condition[]): unknown[] {
  return conditions.map(([name, fn, value]) => {
    const column = columnOf(table, name);
    if (!CONDITION_FUNCTIONS.has(fn)) {
      throw new SchemaError(`unknown condition function ${JSON.stringify(fn)}`, table.name, name);
    }
    return [name, fn, encodeValue(table, column, value, { anySize: true })];
  });
}

function encodeMutations(table: TableSchema, mutations: Mutation[]): unknown[] {
  return mutations.map(([name, mutator, value]) => {
    const column = columnOf(table, name);
    if (!MUTATORS.has(mutator)) {
      throw new SchemaError(`unknown mutator ${JSON.stringify(mutator)}`, table.name, name);
    }
    if (name.startsWith("_") || !column.mutable) throw new SchemaError("cannot be mutated", table.name, name);
    const arithmetic = mutator !== "insert" && mutator !== "delete";
    if (arithmetic) {
      if (column.key.type !== "integer" && column.key.type !== "real") {
        throw new SchemaError(`${mutator} needs an integer or real column`, table.name, name);
      }
      return [name, mutator, encodeValue(table, { ...column, kind: "scalar" }, value)];
    }
    if (column.kind === "scalar") {
      throw new SchemaError(`${mutator} needs a set or map column`, table.name, name);
    }
    const shaped = column.kind === "optional" ? { ...column, kind: "set" as const } : column;
    return [
      name,
      mutator,
      encodeValue(table, shaped, value, { anySize: true, keysOf: mutator === "delete" }),
    ];
  });
}

/** Encodes one operation for the wire, checking tables, columns and values against the schema. */
export function encodeOperation(schema: DatabaseSchema, operation: Operation): Record<string, unknown> {
  switch (operation.op) {
    case "insert": {
      const table = tableOf(schema, operation.table);
      const out: Record<string, unknown> = {
        op: "insert",
        table: operation.table,
        row: encodeRow(table, operation.row, true),
      };
      if (operation.uuidName) out["uuid-name"] = operation.uuidName;
      if (operation.uuid) out.uuid = operation.uuid;
      return out;
    }
    case "select": {
      const table = tableOf(schema, operation.table);
      const out: Record<string, unknown> = {
        op: "select",
        table: operation.table,
        where: encodeConditions(table, operation.where),
      };
      if (operation.columns) {
        for (const c of operation.columns) columnOf(table, c);
        out.columns = operation.columns;
      }
      return out;
    }
    case "update": {
      const table = tableOf(schema, operation.table);
      return {
        op: "update",
        table: operation.table,
        where: encodeConditions(table, operation.where),
        row: encodeRow(table, operation.row, false),
      };
    }
    case "mutate": {
      const table = tableOf(schema, operation.table);
      return {
        op: "mutate",
        table: operation.table,
        where: encodeConditions(table, operation.where),
        mutations: encodeMutations(table, operation.mutations),
      };
    }
    case "delete": {
      const table = tableOf(schema, operation.table);
      return { op: "delete", table: operation.table, where: encodeConditions(table, operation.where) };
    }
    case "wait": {
      const table = tableOf(schema, operation.table);
      for (const c of operation.columns) columnOf(table, c);
      const rows = operation.rows.map((row) => {
        const out: Record<string, unknown> = {};
        for (const [name, value] of Object.entries(row)) {
          if (!operation.columns.includes(name)) {
            throw new SchemaError(`wait row names a column not in "columns"`, table.name, name);
          }
          out[name] = encodeValue(table, columnOf(table, name), value);
        }
        return out;
      });
      const out: Record<string, unknown> = {
        op: "wait",
        table: operation.table,
        where: encodeConditions(table, operation.where),
        columns: operation.columns,
        until: operation.until,
        rows,
      };
      if (operation.timeout !== undefined) out.timeout = operation.timeout;
      return out;
    }
    case "commit":
      return { op: "commit", durable: operation.durable };
    case "abort":
      return { op: "abort" };
    case "comment":
      return { op: "comment", comment: operation.comment };
    case "assert":
      return { op: "assert", lock: operation.lock };
  }
}

interface WireResult {
  uuid?: [string, string];
  rows?: Array<Record<string, unknown>>;
  count?: number;
  error?: string;
  details?: string;
}

/**
 * Pairs results with operations. Throws the typed error of the first failed
 * operation; a failure at commit time (index or referential integrity) is
 * reported by ovsdb-server as an extra result after the last operation.
 */
export function checkResults(
  schema: DatabaseSchema,
  operations: Operation[],
  results: unknown,
): OperationResult[] {
  if (!Array.isArray(results)) {
    throw new SchemaError(`transact reply is not an array: ${JSON.stringify(results)}`);
  }
  for (let i = 0; i < results.length; i++) {
    const r = results[i] as WireResult | null;
    if (r && typeof r.error === "string") {
      throw transactionError(schema.name, i, r.error, r.details, operations[i]);
    }
  }
  return operations.map((operation, i) => {
    const r = (results[i] ?? {}) as WireResult;
    const out: OperationResult = {};
    if (r.uuid) out.uuid = r.uuid[1];
    if (r.rows) {
      const table = "table" in operation ? schema.tables.get(operation.table) : undefined;
      out.rows = r.rows.map((row) => decodeRow(table, row));
    }
    if (typeof r.count === "number") out.count = r.count;
    return out;
  });
}
