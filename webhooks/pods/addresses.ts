/** A pod's primary address: once allocated it never changes; until then, the claim its node makes possible. */
import { ADDRESS_ANNOTATIONS } from "../../domain/port-claims.js";
import { ANNOTATION, annotationField, annotationsOf } from "../../domain/annotations.js";
import { forbidden, type Violation } from "../../domain/violations.js";
import type { AdmissionRequest } from "../envelope.js";

/** Once allocated, a pod's address annotations never change: its port, NAT and neighbours depend on them. */
export function addressChangeViolations(request: AdmissionRequest): Violation[] {
  if (request.operation !== "UPDATE") return [];
  const before = annotationsOf(request.oldObject);
  if (before[ANNOTATION.allocated] !== "true") return [];
  const now = annotationsOf(request.object);
  return ADDRESS_ANNOTATIONS.filter((key) => now[key] !== before[key]).map((changed) =>
    forbidden(
      `${annotationField(changed)}: the pod's address is allocated and never changes (was ${JSON.stringify(before[changed] ?? null)}, found ${JSON.stringify(now[changed] ?? null)}); delete the pod and create it again for another address`,
    ),
  );
}
