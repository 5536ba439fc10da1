/** A pod's QoS rates (`ovn.kubernetes.io/ingress_rate`, `egress_rate`, and their per-attachment forms). */
import { annotationField } from "../../domain/annotations.js";
import type { RuleSettings } from "../../domain/settings.js";
import { forbidden, malformed, type Violation } from "../../domain/violations.js";

/** `ovn.kubernetes.io/ingress_rate` and the per-attachment `<provider>.ovn.kubernetes.io/ingress_rate` forms. */
const RATE_KEY = /^(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?\.)?ovn\.kubernetes\.io\/(ingress|egress)_rate$/;

/** Every rate that is not a whole number of Mbit/s, or above --max-rate-mbps. */
export function rateViolations(
  annotations: Readonly<Record<string, string>>,
  settings: Pick<RuleSettings, "maxRateMbps">,
): Violation[] {
  const violations: Violation[] = [];
  for (const key in annotations) {
    // Most annotations are nobody's rate: the suffix rules them out before the pattern runs.
    if (!key.endsWith("_rate") || !RATE_KEY.test(key)) continue;
    const value = annotations[key] as string;
    if (!/^\d+$/.test(value))
      violations.push(
        malformed(
          `${annotationField(key)}: expected a whole number of Mbit/s (e.g. "100"), found ${JSON.stringify(value)}`,
        ),
      );
    else if (Number(value) > settings.maxRateMbps)
      violations.push(
        forbidden(
          `${annotationField(key)}: expected at most ${settings.maxRateMbps} Mbit/s, found ${JSON.stringify(value)}`,
        ),
      );
  }
  return violations;
}
