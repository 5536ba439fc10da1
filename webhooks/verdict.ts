/**
 * What a rule decides about one admission. Rules are pure:
 * `(request, view) -> Verdict`; they never do I/O.
 */
import type { JsonPatchOperation } from "./patch.js";
import { forbidden, malformed, type Violation } from "../domain/violations.js";

import type { Intent } from "../domain/intents.js";

export interface Verdict {
  allowed: boolean;
  /** 403 for a policy denial, 400 for a malformed object. */
  code?: 400 | 403;
  /** For a denial: the field, the value found and what was expected (or the conflicting object). */
  message?: string;
  /** For a denial: every violation found, the first one first (the message lists them all). */
  violations?: Violation[];
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
  return refuse([forbidden(message)], warnings);
}

/** A malformed object (400): a field does not parse. */
export function reject(message: string, warnings: string[] = []): Verdict {
  return refuse([malformed(message)], warnings);
}

/** The API server keeps a denial's message whole up to about this size; past it, the rest is counted. */
const MESSAGE_LIMIT = 4096;

/**
 * A denial naming every violation of the object, the first one first; its
 * code is the first's. One violation reads exactly as its message.
 */
export function refuse(violations: readonly Violation[], warnings: string[] = []): Verdict {
  const [first] = violations;
  if (!first) throw new RangeError("refuse() needs at least one violation");
  return {
    allowed: false,
    code: first.code,
    message: messageOf(violations),
    violations: [...violations],
    patch: [],
    warnings,
    intents: [],
  };
}

/** The first violation as it reads alone, then the others numbered: "<first>; (2) <second>; (3) <third>". */
function messageOf(violations: readonly Violation[]): string {
  let message = (violations[0] as Violation).message;
  for (const [i, v] of violations.entries()) {
    if (i === 0) continue;
    const part = `; (${i + 1}) ${v.message}`;
    if (message.length + part.length > MESSAGE_LIMIT) {
      message += `; and ${violations.length - i} more`;
      break;
    }
    message += part;
  }
  return message;
}
