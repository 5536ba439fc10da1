export { OvsdbClient } from "./client.js";
export type { ClientOptions, ClientEvents, ConnectionState } from "./client.js";
export { unlessTaken } from "./transact.js";
export type { Claim } from "./transact.js";
export type { MonitorListener, MonitorTableRequest } from "./monitor.js";
export { DatabaseCache, TableCache, indexBy } from "./cache.js";
export type { CacheSpec, TableSpec, IndexKey, TableUpdates2, RowUpdate2, CacheEvents } from "./cache.js";
export { op, where, encodeOperation, checkResults } from "./operations.js";
export type {
  Operation,
  OperationResult,
  Condition,
  ConditionFunction,
  Mutation,
  Mutator,
  InsertOperation,
  SelectOperation,
  UpdateOperation,
  MutateOperation,
  DeleteOperation,
  WaitOperation,
  CommitOperation,
  AbortOperation,
  CommentOperation,
  AssertOperation,
} from "./protocol.js";
export { parseSchema, tableOf, columnOf } from "./schema.js";
export type {
  DatabaseSchema,
  TableSchema,
  ColumnSchema,
  BaseType,
  AtomicType,
  ColumnKind,
} from "./schema.js";
export { NamedUuid, namedUuid, wire, isUuid, encodeValue, decodeValue, decodeRow } from "./values.js";
export type {
  Atom,
  Value,
  Row,
  WireAtom,
  WireValue,
  WireSet,
  WireMap,
  WireUuid,
  WireNamedUuid,
} from "./protocol.js";
export { parseRemotes, openSocket, RemoteSyntaxError } from "./remote.js";
export type { Remote, SslFiles } from "./remote.js";
export { JsonStreamDecoder } from "./wire/framing.js";
export { RpcConnection } from "./wire/jsonrpc.js";
export * from "./errors.js";
