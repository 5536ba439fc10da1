/**
 * Rules for Pods, composed from one file per concern (pods/): QoS rates,
 * secondary networks, network planes, EIP and SNAT, and the primary address.
 * Every check runs, so a denial lists every violation of the pod at once.
 * The mutations: a namespace's default attachments and the node selectors
 * they ask for, the plane's node affinity, the `routed` flag that drops when
 * an EIP or SNAT address changes, and the address claim once the node is known.
 */
import { ANNOTATION, annotationsOf } from "../domain/annotations.js";
import { ENCAP_IP_ANNOTATION } from "../domain/planes.js";
import { isIntent, portClaimOf } from "../domain/port-claims.js";
import type { Intent } from "../domain/intents.js";
import type { KubeObject } from "../domain/kube.js";
import type { RuleSettings } from "../domain/settings.js";
import type { ClusterView } from "../domain/view.js";
import { forbidden, type Violation } from "../domain/violations.js";
import type { AdmissionRequest } from "./envelope.js";
import { buildPatch, editable } from "./patch.js";
import { addressChangeViolations } from "./pods/addresses.js";
import { attachmentSelector, attachmentViolations, defaultAttachmentsFor } from "./pods/attachments.js";
import { checkExternalAddresses } from "./pods/external-addresses.js";
import { lacksPlane, placeOnPlane, planeOf } from "./pods/planes.js";
import { rateViolations } from "./pods/qos.js";
import { allow, refuse, type Verdict } from "./verdict.js";

const nodeNameOf = (pod: KubeObject | null): string | undefined =>
  (pod?.spec as { nodeName?: string } | undefined)?.nodeName;

export function validatePod(request: AdmissionRequest, view: ClusterView, settings: RuleSettings): Verdict {
  const violations: Violation[] = [
    ...addressChangeViolations(request),
    ...rateViolations(annotationsOf(request.object), settings),
    ...attachmentViolations(request, view, settings),
  ];
  const nodeName = nodeNameOf(request.object);
  if (request.operation === "CREATE" && nodeName) {
    const plane = planeOf(request.namespace, request.object, view, settings);
    const problem = plane && lacksPlane(nodeName, plane, view);
    if (problem) violations.push(forbidden(`spec.nodeName: ${problem}`));
  }
  const external = checkExternalAddresses(request, view, settings);
  violations.push(...external.violations);
  if (violations.length > 0) return refuse(violations);
  return external.claim
    ? allow({ intents: [{ kind: "nat-claim", owner: external.claim.pod, spec: external.claim }] })
    : allow();
}

export function mutatePod(request: AdmissionRequest, view: ClusterView, settings: RuleSettings): Verdict {
  if (!request.object) return allow();
  if (request.operation === "CREATE") return mutateCreate(request, view, settings);
  if (request.operation !== "UPDATE") return allow();
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

/**
 * On CREATE: a namespace's default attachments, the node selectors the
 * attachments ask for, and the plane the subnet uses. What would change is
 * worked out first: a pod with nothing to change is not copied or diffed.
 */
function mutateCreate(request: AdmissionRequest, view: ClusterView, settings: RuleSettings): Verdict {
  const object = request.object as KubeObject;
  const defaults = defaultAttachmentsFor(request, view);
  const networks = annotationsOf(object)[ANNOTATION.networks] ?? defaults;
  const current = (object.spec as { nodeSelector?: Record<string, string> } | undefined)?.nodeSelector;
  const selector =
    networks === undefined ? undefined : attachmentSelector(networks, current, request.namespace, view);
  const violations: Violation[] = [...(selector?.violations ?? [])];
  const plane = planeOf(request.namespace, object, view, settings);
  const nodeName = nodeNameOf(object);
  // The node is known: the address is taken now (otherwise at the pod's binding).
  const claim = nodeName
    ? portClaimOf(
        request.namespace,
        object.metadata?.name ?? "",
        object.metadata?.uid ?? "",
        annotationsOf(object),
        view,
        settings,
        nodeName,
      )
    : undefined;
  if (claim && !isIntent(claim)) violations.push(claim);
  // The pod's EIP or SNAT address goes into its port's transaction: one write for both (ADR 0004).
  if (claim && isIntent(claim)) {
    const external = checkExternalAddresses(request, view, settings);
    violations.push(...external.violations);
    if (external.claim) claim.spec = { ...claim.spec, nat: external.claim };
  }
  if (violations.length > 0) return refuse(violations);
  const intents: Intent[] = claim && isIntent(claim) ? [claim] : [];
  if (defaults === undefined && !selector?.changed && !plane) return allow({ intents });

  const pod = editable(object);
  if (defaults !== undefined) {
    pod.metadata = {
      ...pod.metadata,
      annotations: { ...pod.metadata?.annotations, [ANNOTATION.networks]: defaults },
    };
  }
  if (selector?.changed)
    ((pod.spec ??= {}) as { nodeSelector?: Record<string, string> }).nodeSelector = selector.changed;
  if (plane) placeOnPlane(pod, plane, view);
  return allow({ patch: buildPatch(object, pod), intents });
}

/**
 * pods/binding CREATE: the scheduler (or anyone) binds a pod to a node. A
 * node without the pod's plane is refused, which closes the race with a node
 * update; otherwise the Binding carries the encap IP, and the API server
 * copies Binding annotations onto the pod (whose stored version then has its
 * OVS interface programmed).
 */
export function mutatePodBinding(
  request: AdmissionRequest,
  view: ClusterView,
  settings: RuleSettings,
): Verdict {
  const binding = request.object as KubeObject & { target?: { kind?: string; name?: string } };
  const node = binding.target?.name;
  const pod = view.pod(request.namespace, request.name);
  // A pod the view has not seen yet is judged on what we have: nothing to check.
  if (!node || !pod) return allow();
  const violations: Violation[] = [];
  // The node is known now: the pod's address is taken, and reaches it through the Binding's annotations.
  const claim = portClaimOf(request.namespace, request.name, pod.uid, pod.annotations, view, settings, node);
  if (claim && !isIntent(claim)) violations.push(claim);
  const plane = planeOf(
    request.namespace,
    { metadata: { annotations: { ...pod.annotations } } },
    view,
    settings,
  );
  const problem = plane && lacksPlane(node, plane, view);
  if (problem) violations.push(forbidden(`target.name: pod ${pod.key} cannot be bound: ${problem}`));
  if (violations.length > 0) return refuse(violations);
  const intents: Intent[] = claim && isIntent(claim) ? [claim] : [];
  if (!plane) return allow({ intents });
  const encapIp = view.planesOf(node)[plane.plane] as string;
  const edited = editable(binding);
  edited.metadata = {
    ...edited.metadata,
    annotations: { ...edited.metadata?.annotations, [ENCAP_IP_ANNOTATION]: encapIp },
  };
  return allow({ patch: buildPatch(binding, edited), intents });
}
