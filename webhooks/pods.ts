/**
 * Rules for Pods. Later issues add planes, EIP/SNAT and attachments here;
 * this file holds what every pod admission checks today: QoS rates, and the
 * `routed` flag that must drop when an EIP or SNAT address changes.
 */
import type { ClusterView } from "../cluster/view.js";
import { ANNOTATION, annotationField, annotationsOf } from "./annotations.js";
import type { AdmissionRequest } from "./envelope.js";
import { buildPatch, editable } from "./patch.js";
import type { RuleSettings } from "./rules.js";
import { allow, deny, reject, type Verdict } from "./verdict.js";

/** `ovn.kubernetes.io/ingress_rate` and the per-attachment `<provider>.ovn.kubernetes.io/ingress_rate` forms. */
const RATE_KEY = /^(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?\.)?ovn\.kubernetes\.io\/(ingress|egress)_rate$/;

export function validatePod(request: AdmissionRequest, _view: ClusterView, settings: RuleSettings): Verdict {
  const annotations = annotationsOf(request.object);
  for (const [key, value] of Object.entries(annotations)) {
    if (!RATE_KEY.test(key)) continue;
    if (!/^\d+$/.test(value)) {
      return reject(
        `${annotationField(key)}: expected a whole number of Mbit/s (e.g. "100"), found ${JSON.stringify(value)}`,
      );
    }
    if (Number(value) > settings.maxRateMbps) {
      return deny(
        `${annotationField(key)}: expected at most ${settings.maxRateMbps} Mbit/s, found ${JSON.stringify(value)}`,
      );
    }
  }
  return allow();
}

export function mutatePod(request: AdmissionRequest): Verdict {
  if (request.operation !== "UPDATE" || !request.object) return allow();
  const now = annotationsOf(request.object);
  const before = annotationsOf(request.oldObject);
  const moved = [ANNOTATION.eip, ANNOTATION.snat].filter((key) => now[key] !== before[key]);
  if (moved.length === 0 || now[ANNOTATION.routed] === undefined) return allow();
  // The NAT row follows the new address; until it is programmed the pod is not routed.
  const pod = editable(request.object);
  delete pod.metadata?.annotations?.[ANNOTATION.routed];
  return allow({
    patch: buildPatch(request.object, pod),
    warnings: [`${moved.join(" and ")} changed: ${ANNOTATION.routed} removed until the NAT row is moved`],
  });
}
