/**
 * What a rule decides about one admission. Rules are pure:
 * `(request, view) -> Verdict`; they never do I/O.
 */
import type { JsonPatchOperation } from "./patch.js";

/**
 * What OVN or OVS must become once the object is admitted; handlers/ carry
 * intents out as OVSDB transactions (never on dryRun).
 */
export interface Intent {
  /** Handler that carries it out, e.g. "nat" or "encap-ip". */
  kind: string;
  /** The object it serves, "namespace/name" or a node name. */
  owner: string;
  /** What the handler needs, in its own words. */
  spec: Record<string, unknown>;
  /**
   * When it cannot be carried out in time, admit anyway with a warning: its
   * handler keeps retrying (a node's Open_vSwitch database that is down).
   */
  optional?: boolean;
  /** Run on dryRun too, writing nothing, so the answer shows what would be given (an address). */
  preview?: boolean;
}

export interface Verdict {
  allowed: boolean;
  /** 403 for a policy denial, 400 for a malformed object. */
  code?: 400 | 403;
  /** For a denial: the field, the value found and what was expected (or the conflicting object). */
  message?: string;
  patch: JsonPatchOperation[];
  warnings: string[];
  intents: Intent[];
}

export function allow(extra: Partial<Omit<Verdict, "allowed" | "code" | "message">> = {}): Verdict {
  return {
    allowed: true,
    patch: extra.patch ?? [],
    warnings: extra.warnings ?? [],
    intents: extra.intents ?? [],
  };
}

/** A policy denial (403): the object is well-formed but would break the network. */
export function deny(message: string, warnings: string[] = []): Verdict {
  return { allowed: false, code: 403, message, patch: [], warnings, intents: [] };
}

/** A malformed object (400): a field does not parse. */
export function reject(message: string, warnings: string[] = []): Verdict {
  return { allowed: false, code: 400, message, patch: [], warnings, intents: [] };
}
