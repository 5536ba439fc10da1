/**
 * Rules for Pods: QoS rates; the `routed` flag that drops when an EIP or SNAT
 * address changes; network planes (a pod whose subnet names a plane can only
 * land on a node that has it, and records the encap IP it uses there).
 */
import type { V1Affinity, V1NodeSelectorTerm } from "@kubernetes/client-node";
import {
  GATEWAY_CONFIGMAP,
  ANNOTATION,
  annotationField,
  annotationsOf,
  NAD_NODE_SELECTOR,
  DEFAULT_NETWORKS_ANNOTATION,
  SHARED_ATTACHMENTS_LABEL,
} from "../domain/annotations.js";
import {
  externalAddressProblem,
  GATEWAY_KEY,
  gatewayOf,
  type GatewayMode,
} from "../domain/gateway-config.js";
import type { ClusterView } from "../domain/view.js";
import type { PodFacts } from "../domain/facts.js";
import { holdsAddresses, natWantOf, type NatClaim } from "../domain/nat.js";

import type { AdmissionRequest } from "./envelope.js";
import type { KubeObject } from "../domain/kube.js";
import { ENCAP_IP_ANNOTATION, planeLabel } from "../domain/planes.js";
import { addressOf, cidrContains, isIpAddress, isUnicastMac } from "../domain/addresses.js";
import {
  interfaceNameProblem,
  parseNetworks,
  parseNodeSelector,
  type Attachment,
} from "../domain/attachments.js";
import { ipamNetworks } from "./nads.js";
import { DEFAULT_VPC, subnetOfPod } from "../domain/subnets.js";
import { ADDRESS_ANNOTATIONS, isIntent, portClaimOf } from "../domain/port-claims.js";
import { buildPatch, editable } from "./patch.js";
import type { RuleSettings } from "../domain/settings.js";
import { allow, deny, refuse, reject, type Verdict } from "./verdict.js";

/** The plane the pod's subnet names, with the subnet, when there is one. */
function planeOf(namespace: string, pod: KubeObject | null, view: ClusterView, settings: RuleSettings) {
  const subnet = subnetOfPod(namespace, annotationsOf(pod), view, settings.defaultSubnet);
  return subnet?.nodeNetwork ? { plane: subnet.nodeNetwork, subnet: subnet.name } : undefined;
}

/** Why `node` cannot take a pod of `plane`, or undefined when it can. */
function lacksPlane(
  node: string,
  plane: { plane: string; subnet: string },
  view: ClusterView,
): string | undefined {
  if (view.planesOf(node)[plane.plane] !== undefined) return undefined;
  const having = view.nodesWithPlane(plane.plane).sort();
  return (
    `node ${node} does not declare plane ${plane.plane}, which subnet ${plane.subnet} uses (spec.nodeNetwork); ` +
    (having.length
      ? `nodes that do: ${having.slice(0, 5).join(", ")}${having.length > 5 ? ` and ${having.length - 5} more` : ""}`
      : "no node does")
  );
}

/** Adds "has the plane label" to every required node selector term (terms are ORed, so each must carry it). */
function requirePlane(affinity: V1Affinity | undefined, plane: string): V1Affinity {
  const out: V1Affinity = affinity ?? {};
  out.nodeAffinity ??= {};
  const required = (out.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution ??= {
    nodeSelectorTerms: [],
  });
  const expression = { key: planeLabel(plane), operator: "Exists" };
  if (required.nodeSelectorTerms.length === 0)
    required.nodeSelectorTerms.push({ matchExpressions: [expression] });
  for (const term of required.nodeSelectorTerms as V1NodeSelectorTerm[]) {
    const has = term.matchExpressions?.some((e) => e.key === expression.key && e.operator === "Exists");
    if (!has) term.matchExpressions = [...(term.matchExpressions ?? []), expression];
  }
  return out;
}

/** `ovn.kubernetes.io/ingress_rate` and the per-attachment `<provider>.ovn.kubernetes.io/ingress_rate` forms. */
const RATE_KEY = /^(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?\.)?ovn\.kubernetes\.io\/(ingress|egress)_rate$/;

function isShared(namespace: string, view: ClusterView, settings: RuleSettings): boolean {
  return (
    settings.sharedAttachmentNamespaces.includes(namespace) ||
    view.namespace(namespace)?.labels[SHARED_ATTACHMENTS_LABEL] === "true"
  );
}

/** The networks a static address of an attachment must lie in: its Kube-OVN subnet (by provider), else the NAD's IPAM ranges. */
function attachmentNetwork(
  attachment: Attachment,
  view: ClusterView,
): { cidrs: string[]; from: string } | undefined {
  const nad = view.nad(attachment.namespace, attachment.name);
  if (!nad) return undefined;
  const subnet = nad.provider
    ? view.subnets().find((s) => s.provider === nad.provider && s.cidrBlock)
    : undefined;
  if (subnet)
    return { cidrs: subnet.cidrBlock.split(",").map((c) => c.trim()), from: `subnet ${subnet.name}` };
  const ranges = ipamNetworks(nad.config);
  return ranges.length
    ? { cidrs: ranges, from: `the IPAM range of NetworkAttachmentDefinition ${nad.key}` }
    : undefined;
}

/** Checks `k8s.v1.cni.cncf.io/networks`; returns the denial, if any. */
function checkAttachments(
  request: AdmissionRequest,
  view: ClusterView,
  settings: RuleSettings,
): Verdict | undefined {
  const text = annotationsOf(request.object)[ANNOTATION.networks];
  if (text === undefined) return undefined;
  const field = annotationField(ANNOTATION.networks);
  const parsed = parseNetworks(text, request.namespace);
  if (!parsed.ok) return reject(`${field}: ${parsed.error}`);
  const interfaces = new Map<string, number>();
  const self = `${request.namespace}/${request.object?.metadata?.name ?? request.name}`;
  for (const [n, attachment] of parsed.value.entries()) {
    const at = `${field}: attachment ${n + 1} (${attachment.namespace}/${attachment.name})`;
    // Without NADs in the view (no cluster) existence and isolation cannot be judged.
    if (view.knows("NetworkAttachmentDefinition")) {
      if (!view.nad(attachment.namespace, attachment.name)) {
        return deny(
          `${at}: NetworkAttachmentDefinition ${attachment.namespace}/${attachment.name} does not exist`,
        );
      }
      if (attachment.namespace !== request.namespace && !isShared(attachment.namespace, view, settings)) {
        const shared = settings.sharedAttachmentNamespaces;
        return deny(
          `${at}: pods of namespace ${request.namespace} may only use NetworkAttachmentDefinitions of their own namespace` +
            (shared.length ? ` or of ${shared.join(", ")}` : "") +
            ` (or of a namespace labelled ${SHARED_ATTACHMENTS_LABEL}=true)`,
        );
      }
    }
    if (attachment.interface !== undefined) {
      if (attachment.interface === "eth0")
        return deny(
          `${at}: interface eth0 is the pod's primary interface; name the attachment's interface otherwise (e.g. net1)`,
        );
      const problem = interfaceNameProblem(attachment.interface);
      if (problem) return reject(`${at}: ${problem}`);
      const earlier = interfaces.get(attachment.interface);
      if (earlier !== undefined)
        return deny(`${at}: interface ${attachment.interface} is already used by attachment ${earlier}`);
      interfaces.set(attachment.interface, n + 1);
    }
    for (const ip of attachment.ips ?? []) {
      const address = addressOf(ip);
      if (!isIpAddress(address)) return reject(`${at}: ips: ${JSON.stringify(ip)} is not an IP address`);
      const network = attachmentNetwork(attachment, view);
      if (network && !network.cidrs.some((c) => cidrContains(c, address))) {
        return deny(`${at}: ips: ${address} is outside ${network.from} (${network.cidrs.join(",")})`);
      }
      const holders = view.podsWithStaticIp(address).filter((p) => p.key !== self);
      if (holders.length > 0)
        return deny(`${at}: ips: ${address} is already held by pod ${holders.map((p) => p.key).join(", ")}`);
    }
    if (attachment.mac !== undefined) {
      if (!isUnicastMac(attachment.mac)) {
        return reject(
          `${at}: mac: expected a unicast MAC address (e.g. "0a:58:0a:10:00:05"), found ${JSON.stringify(attachment.mac)}`,
        );
      }
      const holders = view
        .podsWithAttachmentMac(attachment.namespace, attachment.name, attachment.mac)
        .filter((p) => p.key !== self);
      if (holders.length > 0)
        return deny(
          `${at}: mac: ${attachment.mac} is already used on this network by pod ${holders.map((p) => p.key).join(", ")}`,
        );
    }
  }
  return undefined;
}

/** Once allocated, a pod's address annotations never change: its port, NAT and neighbours depend on them. */
function addressChange(request: AdmissionRequest): Verdict | undefined {
  if (request.operation !== "UPDATE") return undefined;
  const before = annotationsOf(request.oldObject);
  if (before[ANNOTATION.allocated] !== "true") return undefined;
  const now = annotationsOf(request.object);
  const changed = ADDRESS_ANNOTATIONS.find((key) => now[key] !== before[key]);
  if (!changed) return undefined;
  return deny(
    `${annotationField(changed)}: the pod's address is allocated and never changes (was ${JSON.stringify(before[changed] ?? null)}, found ${JSON.stringify(now[changed] ?? null)}); delete the pod and create it again for another address`,
  );
}

export function validatePod(request: AdmissionRequest, view: ClusterView, settings: RuleSettings): Verdict {
  const changedAddress = addressChange(request);
  if (changedAddress) return changedAddress;
  const annotations = annotationsOf(request.object);
  for (const key in annotations) {
    // Most annotations are nobody's rate: the suffix rules them out before the pattern runs.
    if (!key.endsWith("_rate") || !RATE_KEY.test(key)) continue;
    const value = annotations[key] as string;
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
  const attachments = checkAttachments(request, view, settings);
  if (attachments) return attachments;
  const nodeName = (request.object?.spec as { nodeName?: string } | undefined)?.nodeName;
  if (request.operation === "CREATE" && nodeName) {
    const plane = planeOf(request.namespace, request.object, view, settings);
    const problem = plane && lacksPlane(nodeName, plane, view);
    if (problem) return deny(`spec.nodeName: ${problem}`);
  }
  return checkExternalAddresses(request, view, settings);
}

const named = (pods: PodFacts[]): string =>
  pods.map((p) => `${p.key}${p.terminating ? " (terminating)" : ""}`).join(", ");

/**
 * `ovn.kubernetes.io/eip` and `snat` (seed 003): a valid address of the
 * external network, an EIP held by one pod and never also an SNAT address.
 * Once the pod has its IP, the NAT intent writes its row; the transaction
 * that writes it is what finally decides who holds an address.
 */
function checkExternalAddresses(
  request: AdmissionRequest,
  view: ClusterView,
  settings: RuleSettings,
): Verdict {
  const now = annotationsOf(request.object);
  const before = annotationsOf(request.oldObject);
  const eip = now[ANNOTATION.eip];
  const snat = now[ANNOTATION.snat];
  const name = request.object?.metadata?.name || request.name;
  const self = `${request.namespace}/${name}`;
  // Dropping both releases the row the pod had, once the API server stores the pod without them.
  if (eip === undefined && snat === undefined) return allow();
  for (const [key, value] of [
    [ANNOTATION.eip, eip],
    [ANNOTATION.snat, snat],
  ] as const) {
    if (value !== undefined && !isIpAddress(value))
      return reject(
        `${annotationField(key)}: expected an IP address (e.g. "172.56.0.233"), found ${JSON.stringify(value)}`,
      );
  }
  if (eip !== undefined && snat !== undefined) {
    return deny(
      `${annotationField(ANNOTATION.eip)} and ${annotationField(ANNOTATION.snat)}: a pod has either an EIP (its own address, both directions) or an SNAT address (shared, outbound only), not both; found eip ${eip} and snat ${snat}`,
    );
  }
  const key = eip !== undefined ? ANNOTATION.eip : ANNOTATION.snat;
  const address = (eip ?? snat) as string;
  const field = annotationField(key);
  // The gateway ConfigMap serves the default VPC (seed 003); a custom VPC has its own NAT gateway.
  const subnet = subnetOfPod(request.namespace, now, view, settings.defaultSubnet);
  if (subnet?.vpc && subnet.vpc !== DEFAULT_VPC) {
    return deny(
      `${field}: the pod's subnet ${subnet.name} is in VPC ${subnet.vpc}; EIP and SNAT through ${GATEWAY_CONFIGMAP} serve the default VPC ${DEFAULT_VPC} only (a custom VPC uses a VpcNatGateway)`,
    );
  }
  let mode: GatewayMode = "centralized";
  if (view.knows("ConfigMap")) {
    const reading = gatewayOf(view);
    if (!reading.enabled)
      return deny(
        `${field}: the external gateway is not enabled (ConfigMap ${GATEWAY_CONFIGMAP} with ${GATEWAY_KEY.enabled}: "true")`,
      );
    if (!reading.config)
      return deny(`${field}: ConfigMap ${GATEWAY_CONFIGMAP} is not usable: ${reading.problems.join("; ")}`);
    mode = reading.config.mode;
    const problem = externalAddressProblem(address, reading.config.address, reading.config.nicIp);
    if (problem) return deny(`${field}: ${problem}`);
  }
  const others = (pods: PodFacts[]) => pods.filter((p) => p.key !== self && holdsAddresses(p));
  if (eip !== undefined) {
    const holders = others(view.podsWithEip(eip));
    if (holders.length > 0) return deny(`${field}: ${eip} is already the EIP of pod ${named(holders)}`);
    const sharing = others(view.podsWithSnat(eip));
    if (sharing.length > 0)
      return deny(`${field}: ${eip} is already the SNAT address of pod ${named(sharing)}`);
  } else {
    const holders = others(view.podsWithEip(address));
    if (holders.length > 0) return deny(`${field}: ${address} is already the EIP of pod ${named(holders)}`);
  }
  // The address is held from the admission that asked for it; its row is programmed from the stored pod.
  if (request.operation === "UPDATE" && eip === before[ANNOTATION.eip] && snat === before[ANNOTATION.snat])
    return allow();
  const holds = natWantOf(request.namespace, name, now, mode, settings.networkModel).holds;
  if (!holds) return allow();
  const claim: NatClaim = { pod: self, uid: request.object?.metadata?.uid ?? "", holds };
  return allow({ intents: [{ kind: "nat-claim", owner: self, spec: claim }] });
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
  if (selector && "denial" in selector) return selector.denial;
  const plane = planeOf(request.namespace, object, view, settings);
  const nodeName = (object.spec as { nodeName?: string } | undefined)?.nodeName;
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
  if (claim && !isIntent(claim)) return refuse([claim]);
  // The pod's EIP or SNAT address goes into its port's transaction: one write for both (ADR 0004).
  if (claim) {
    const external = checkExternalAddresses(request, view, settings);
    if (!external.allowed) return external;
    const natClaim = external.intents.find((i) => i.kind === "nat-claim")?.spec as NatClaim | undefined;
    if (natClaim) claim.spec = { ...claim.spec, nat: natClaim };
  }
  const intents = claim ? [claim] : [];
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

function defaultAttachmentsFor(request: AdmissionRequest, view: ClusterView): string | undefined {
  if (annotationsOf(request.object)[ANNOTATION.networks] !== undefined) return undefined;
  return view.namespace(request.namespace)?.annotations[DEFAULT_NETWORKS_ANNOTATION] || undefined;
}

/**
 * The node selector the pod needs once every referenced NAD's selector is
 * merged in (`changed` only when that adds something). Two NADs, or a NAD and
 * the pod, asking for different values of one key is a denial naming both,
 * rather than letting the last one win.
 */
function attachmentSelector(
  networks: string,
  current: Record<string, string> | undefined,
  namespace: string,
  view: ClusterView,
): { denial: Verdict } | { changed: Record<string, string> | undefined } {
  const parsed = parseNetworks(networks, namespace);
  if (!parsed.ok) return { changed: undefined }; // the validating webhook says what is wrong
  let selector: Record<string, string> | undefined;
  let askedBy: Map<string, string> | undefined;
  let added = false;
  for (const attachment of parsed.value) {
    const nad = view.nad(attachment.namespace, attachment.name);
    const wanted = nad?.annotations[NAD_NODE_SELECTOR];
    if (!nad || !wanted) continue;
    const nadSelector = parseNodeSelector(wanted);
    if (!nadSelector.ok) continue; // refused when the NAD was admitted
    // Made only when a NAD asks for nodes: most attachments do not.
    selector ??= { ...(current ?? {}) };
    askedBy ??= new Map(Object.keys(selector).map((k) => [k, "the pod's spec.nodeSelector"]));
    for (const [key, value] of Object.entries(nadSelector.value)) {
      if (key in selector && selector[key] !== value) {
        return {
          denial: deny(
            `spec.nodeSelector: ${key}: ${askedBy.get(key)} asks for ${JSON.stringify(selector[key])} and NetworkAttachmentDefinition ${nad.key} for ${JSON.stringify(value)}; no node can satisfy both`,
          ),
        };
      }
      if (!(key in selector)) added = true;
      selector[key] = value;
      if (!askedBy.has(key)) askedBy.set(key, `NetworkAttachmentDefinition ${nad.key}`);
    }
  }
  return { changed: added ? selector : undefined };
}

/**
 * A pod whose subnet names a plane may only be scheduled where the plane is;
 * one already placed records its encap IP, which its OVS interface gets once
 * the pod is stored.
 */
function placeOnPlane(pod: KubeObject, plane: { plane: string; subnet: string }, view: ClusterView): void {
  const spec = (pod.spec ??= {}) as { affinity?: V1Affinity; nodeName?: string };
  spec.affinity = requirePlane(spec.affinity, plane.plane);
  const encapIp = spec.nodeName ? view.planesOf(spec.nodeName)[plane.plane] : undefined;
  const name = pod.metadata?.name;
  if (!spec.nodeName || !encapIp || !name) return;
  pod.metadata = {
    ...pod.metadata,
    annotations: { ...pod.metadata?.annotations, [ENCAP_IP_ANNOTATION]: encapIp },
  };
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
  // The node is known now: the pod's address is taken, and reaches it through the Binding's annotations.
  const claim = portClaimOf(request.namespace, request.name, pod.uid, pod.annotations, view, settings, node);
  if (claim && !isIntent(claim)) return refuse([claim]);
  const intents = claim ? [claim] : [];
  const plane = planeOf(
    request.namespace,
    { metadata: { annotations: { ...pod.annotations } } },
    view,
    settings,
  );
  if (!plane) return allow({ intents });
  const problem = lacksPlane(node, plane, view);
  if (problem) return deny(`target.name: pod ${pod.key} cannot be bound: ${problem}`);
  const encapIp = view.planesOf(node)[plane.plane] as string;
  const edited = editable(binding);
  edited.metadata = {
    ...edited.metadata,
    annotations: { ...edited.metadata?.annotations, [ENCAP_IP_ANNOTATION]: encapIp },
  };
  return allow({ patch: buildPatch(binding, edited), intents });
}
