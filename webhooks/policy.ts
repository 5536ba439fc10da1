/**
 * Namespace policy, decided in one place for every rule: a label on the
 * Namespace chooses `enforce` (the default), `warn` (denials become warnings,
 * and nothing is programmed for the object), or `off` (untouched).
 */
import type { ClusterView } from "../domain/view.js";
import type { Verdict } from "./verdict.js";

export type PolicyMode = "enforce" | "warn" | "off";
const MODES = new Set<string>(["enforce", "warn", "off"]);

export interface Policy {
  mode: PolicyMode;
  /** Set when the label holds a value we do not know: we enforce and say so. */
  warning?: string;
}

export function policyFor(namespace: string, view: ClusterView, label: string): Policy {
  if (!namespace) return { mode: "enforce" }; // cluster-scoped objects: always enforced
  const value = view.namespace(namespace)?.labels[label];
  if (value === undefined) return { mode: "enforce" };
  if (MODES.has(value)) return { mode: value as PolicyMode };
  return {
    mode: "enforce",
    warning: `namespace ${namespace}: label ${label}=${JSON.stringify(value)} is not enforce, warn or off; enforcing`,
  };
}

/** Turns a verdict into what the namespace's policy lets through. */
export function applyPolicy(verdict: Verdict, policy: Policy): Verdict {
  const warnings = policy.warning ? [...verdict.warnings, policy.warning] : verdict.warnings;
  // Most admissions: the verdict stands as it is, not copied.
  if (verdict.allowed || policy.mode !== "warn")
    return warnings === verdict.warnings ? verdict : { ...verdict, warnings };
  // Admitted, but what would break the network (an address another pod holds) is never programmed.
  return {
    allowed: true,
    patch: [],
    intents: [],
    warnings: [
      ...warnings,
      `${verdict.message ?? "denied"} (namespace policy is warn: admitted anyway, and nothing is programmed in OVN for it)`,
    ],
  };
}
