/**
 * Claims: writes that commit only when a value is free. A `wait` per claimed
 * value goes before the writes in one transaction, so the database, not the
 * caller, decides which of two racing writers wins.
 */
import { AlreadyTakenError, TimedOutError } from "./errors.js";
import { op } from "./operations.js";
import type { Condition, Operation, Value, WaitOperation } from "./protocol.js";

export interface Claim {
  table: string;
  /** Column values no row may hold for the claim to succeed. */
  values: Record<string, Value>;
  /**
   * Further conditions a row must also meet to count as taking the values,
   * e.g. `["external_ids", "excludes", { owner: "me" }]` so that the caller's
   * own row does not block it.
   */
  where?: Condition[];
}

/**
 * A `wait` that fails at once when some row of `table` matches all of
 * `values`: put it before the write in the same transaction, and the write
 * commits only if the value was free. The database, not the caller, decides.
 */
export function unlessTaken(claim: Claim): WaitOperation {
  const where: Condition[] = Object.entries(claim.values).map(([c, v]) => [c, "==", v]);
  where.push(...(claim.where ?? []));
  return op.wait(claim.table, where, Object.keys(claim.values), "==", [], 0);
}

/** The claims' waits, then the operations: one transaction. */
export function claimOperations(claims: readonly Claim[], operations: readonly Operation[]): Operation[] {
  return [...claims.map(unlessTaken), ...operations];
}

/** A wait that failed is the claim it guarded, lost: AlreadyTakenError naming its table and values. */
export function claimFailure(err: unknown, claims: readonly Claim[]): unknown {
  if (err instanceof TimedOutError && err.index < claims.length) {
    const claim = claims[err.index] as Claim;
    return new AlreadyTakenError(claim.table, claim.values, err);
  }
  return err;
}
