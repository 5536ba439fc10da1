/**
 * The RFC 7047 vocabulary as types: values (§5.1) as callers write them and
 * as they go on the wire, and transaction operations (§5.2) with their
 * results. Types only and no imports, so every layer of the client (errors
 * included) can name an operation without importing back.
 */

/** A row inserted earlier in the same transaction, by its uuid-name (values.ts's NamedUuid). */
export interface NamedUuidRef {
  readonly name: string;
  toJSON(): WireNamedUuid;
}

export type Atom = string | number | boolean | NamedUuidRef;
export type Value = Atom | null | Atom[] | Record<string, Atom>;
export type Row = Record<string, Value>;

export type WireUuid = ["uuid", string];
export type WireNamedUuid = ["named-uuid", string];
export type WireAtom = string | number | boolean | WireUuid | WireNamedUuid;
export type WireSet = ["set", WireAtom[]];
export type WireMap = ["map", Array<[WireAtom, WireAtom]>];
export type WireValue = WireAtom | WireSet | WireMap;

export type ConditionFunction = "<" | "<=" | "==" | "!=" | ">=" | ">" | "includes" | "excludes";
export type Condition = [column: string, fn: ConditionFunction, value: Value];
export type Mutator = "+=" | "-=" | "*=" | "/=" | "%=" | "insert" | "delete";
export type Mutation = [column: string, mutator: Mutator, value: Value];

export interface InsertOperation {
  op: "insert";
  table: string;
  row: Row;
  uuidName?: string;
  /** Ask the server to use this UUID (ovsdb-server extension, OVS 2.13+). */
  uuid?: string;
}
export interface SelectOperation {
  op: "select";
  table: string;
  where: Condition[];
  columns?: string[];
}
export interface UpdateOperation {
  op: "update";
  table: string;
  where: Condition[];
  row: Row;
}
export interface MutateOperation {
  op: "mutate";
  table: string;
  where: Condition[];
  mutations: Mutation[];
}
export interface DeleteOperation {
  op: "delete";
  table: string;
  where: Condition[];
}
export interface WaitOperation {
  op: "wait";
  table: string;
  where: Condition[];
  columns: string[];
  until: "==" | "!=";
  rows: Row[];
  /** Milliseconds; 0 fails at once when the condition does not hold. Omitted waits forever. */
  timeout?: number;
}
export interface CommitOperation {
  op: "commit";
  durable: boolean;
}
export interface AbortOperation {
  op: "abort";
}
export interface CommentOperation {
  op: "comment";
  comment: string;
}
export interface AssertOperation {
  op: "assert";
  lock: string;
}

export type Operation =
  | InsertOperation
  | SelectOperation
  | UpdateOperation
  | MutateOperation
  | DeleteOperation
  | WaitOperation
  | CommitOperation
  | AbortOperation
  | CommentOperation
  | AssertOperation;

export interface OperationResult {
  /** The new row's UUID (insert). */
  uuid?: string;
  /** The selected rows, decoded (select). */
  rows?: Row[];
  /** How many rows matched (update, mutate, delete). */
  count?: number;
}
