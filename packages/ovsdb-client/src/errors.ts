/**
 * Errors of the client. Every error the server can name in a transaction
 * result (RFC 7047 §5.2, plus the names ovsdb-server adds) has its own class,
 * so callers branch with `instanceof` instead of comparing strings.
 */
import type { Operation } from "./protocol.js";

export class OvsdbError extends Error {
  override name = "OvsdbError";
  /** Stable machine-readable code, e.g. "OVSDB_TIMED_OUT". */
  readonly code: string = "OVSDB_ERROR";
}

/** The byte stream did not hold well-formed JSON texts. */
export class FramingError extends OvsdbError {
  override name = "FramingError";
  override readonly code = "OVSDB_FRAMING";
}

/** The connection closed (or was never open) while a request was pending. */
export class ConnectionClosedError extends OvsdbError {
  override name = "ConnectionClosedError";
  override readonly code = "OVSDB_CONNECTION_CLOSED";
  constructor(
    message: string,
    readonly remote?: string,
  ) {
    super(remote ? `${message} (${remote})` : message);
  }
}

/** A request got no reply within its time limit. */
export class RequestTimeoutError extends OvsdbError {
  override name = "RequestTimeoutError";
  override readonly code = "OVSDB_REQUEST_TIMEOUT";
  constructor(
    readonly method: string,
    readonly timeoutMs: number,
    readonly remote?: string,
  ) {
    super(`${method} got no reply within ${timeoutMs} ms${remote ? ` from ${remote}` : ""}`);
  }
}

/** The caller canceled a request (RFC 7047 `cancel`); the server drops it without committing. */
export class CanceledError extends OvsdbError {
  override name = "CanceledError";
  override readonly code = "OVSDB_CANCELED";
  constructor(
    readonly method: string,
    readonly remote?: string,
  ) {
    super(`${method} canceled by the caller${remote ? ` (${remote})` : ""}`);
  }
}

/** A JSON-RPC method failed as a whole (unknown database, unknown method, canceled...). */
export class RpcError extends OvsdbError {
  override name = "RpcError";
  override readonly code = "OVSDB_RPC";
  constructor(
    readonly method: string,
    readonly error: unknown,
  ) {
    super(`${method} failed: ${describeRpcError(error)}`);
  }
}

function describeRpcError(error: unknown): string {
  if (typeof error === "string") return error;
  if (error && typeof error === "object") {
    const e = error as { error?: unknown; details?: unknown };
    if (typeof e.error === "string")
      return typeof e.details === "string" ? `${e.error}: ${e.details}` : e.error;
  }
  return JSON.stringify(error);
}

/** A value, table or column does not fit the database schema; caught before anything is sent. */
export class SchemaError extends OvsdbError {
  override name = "SchemaError";
  override readonly code = "OVSDB_SCHEMA";
  constructor(
    message: string,
    readonly table?: string,
    readonly column?: string,
  ) {
    super(
      table && column ? `${table}.${column}: ${message}` : table ? `table ${table}: ${message}` : message,
    );
  }
}

/**
 * A transaction failed. `index` is the position of the failed operation
 * (equal to the number of operations when the failure came at commit time,
 * e.g. an index or referential integrity violation), `error` and `details`
 * are the server's own words.
 */
export class TransactionError extends OvsdbError {
  override name = "TransactionError";
  override readonly code: string = "OVSDB_TRANSACTION";
  constructor(
    readonly database: string,
    readonly index: number,
    readonly error: string,
    readonly details: string | undefined,
    readonly operation: Operation | undefined,
  ) {
    super(
      `transaction on ${database} failed at operation ${index}` +
        (operation ? ` (${operation.op}${"table" in operation ? ` ${operation.table}` : ""})` : " (commit)") +
        `: ${error}${details ? `: ${details}` : ""}`,
    );
  }
}

function transactionErrorClass(name: string, code: string) {
  return class extends TransactionError {
    override name = name;
    override readonly code = code;
  };
}

export const ReferentialIntegrityError = transactionErrorClass(
  "ReferentialIntegrityError",
  "OVSDB_REFERENTIAL_INTEGRITY",
);
export const ConstraintViolationError = transactionErrorClass(
  "ConstraintViolationError",
  "OVSDB_CONSTRAINT_VIOLATION",
);
export const ResourcesExhaustedError = transactionErrorClass(
  "ResourcesExhaustedError",
  "OVSDB_RESOURCES_EXHAUSTED",
);
export const IoError = transactionErrorClass("IoError", "OVSDB_IO_ERROR");
export const DuplicateUuidNameError = transactionErrorClass(
  "DuplicateUuidNameError",
  "OVSDB_DUPLICATE_UUID_NAME",
);
export const DomainError = transactionErrorClass("DomainError", "OVSDB_DOMAIN_ERROR");
export const RangeViolationError = transactionErrorClass("RangeViolationError", "OVSDB_RANGE_ERROR");
/** A `wait` operation's condition did not hold within its timeout. */
export const TimedOutError = transactionErrorClass("TimedOutError", "OVSDB_TIMED_OUT");
export const NotSupportedError = transactionErrorClass("NotSupportedError", "OVSDB_NOT_SUPPORTED");
/** An `abort` operation ran. */
export const AbortedError = transactionErrorClass("AbortedError", "OVSDB_ABORTED");
export const NotOwnerError = transactionErrorClass("NotOwnerError", "OVSDB_NOT_OWNER");
/** The server rejected the syntax of an operation (bad column, bad value...). */
export const SyntaxViolationError = transactionErrorClass("SyntaxViolationError", "OVSDB_SYNTAX");
export const PermissionError = transactionErrorClass("PermissionError", "OVSDB_PERMISSION");

const byServerName: Record<string, typeof TransactionError> = {
  "referential integrity violation": ReferentialIntegrityError,
  "constraint violation": ConstraintViolationError,
  "resources exhausted": ResourcesExhaustedError,
  "I/O error": IoError,
  "duplicate uuid-name": DuplicateUuidNameError,
  "domain error": DomainError,
  "range error": RangeViolationError,
  "timed out": TimedOutError,
  "not supported": NotSupportedError,
  aborted: AbortedError,
  "not owner": NotOwnerError,
  "syntax error": SyntaxViolationError,
  "unknown column": SyntaxViolationError,
  "unknown table": SyntaxViolationError,
  "permission error": PermissionError,
};

/** Builds the typed error for one failed operation of a transaction. */
export function transactionError(
  database: string,
  index: number,
  error: string,
  details: string | undefined,
  operation: Operation | undefined,
): TransactionError {
  const Class = byServerName[error] ?? TransactionError;
  return new Class(database, index, error, details, operation);
}

/**
 * The value a compare-and-set wanted is already held by a row. Carries the
 * table, the condition and (when the cache knows it) the holding row.
 */
export class AlreadyTakenError extends OvsdbError {
  override name = "AlreadyTakenError";
  override readonly code = "OVSDB_ALREADY_TAKEN";
  constructor(
    readonly table: string,
    readonly claim: Record<string, unknown>,
    override readonly cause: TransactionError,
  ) {
    super(
      `${table} already has a row with ${Object.entries(claim)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(", ")}`,
    );
  }
}
