/**
 * A pod's secondary networks (`k8s.v1.cni.cncf.io/networks`, seeds 001 and
 * 004): every attachment names a NetworkAttachmentDefinition the pod may use,
 * with a valid interface, addresses inside its network that nobody else
 * holds, and a MAC of its own; the NADs' node selectors join the pod's.
 */
import {
  ANNOTATION,
  annotationField,
  annotationsOf,
  DEFAULT_NETWORKS_ANNOTATION,
  NAD_NODE_SELECTOR,
  SHARED_ATTACHMENTS_LABEL,
} from "../../domain/annotations.js";
import { addressOf, cidrContains, isIpAddress, isUnicastMac } from "../../domain/addresses.js";
import {
  interfaceNameProblem,
  parseNetworks,
  parseNodeSelector,
  type Attachment,
} from "../../domain/attachments.js";
import type { RuleSettings } from "../../domain/settings.js";
import type { ClusterView } from "../../domain/view.js";
import { forbidden, malformed, type Violation } from "../../domain/violations.js";
import type { AdmissionRequest } from "../envelope.js";
import { ipamNetworks } from "../nads.js";

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

/** Every problem of every attachment in `k8s.v1.cni.cncf.io/networks`, in the annotation's order. */
export function attachmentViolations(
  request: AdmissionRequest,
  view: ClusterView,
  settings: RuleSettings,
): Violation[] {
  const text = annotationsOf(request.object)[ANNOTATION.networks];
  if (text === undefined) return [];
  const field = annotationField(ANNOTATION.networks);
  const parsed = parseNetworks(text, request.namespace);
  if (!parsed.ok) return [malformed(`${field}: ${parsed.error}`)];
  const violations: Violation[] = [];
  const interfaces = new Map<string, number>();
  const self = `${request.namespace}/${request.object?.metadata?.name ?? request.name}`;
  for (const [n, attachment] of parsed.value.entries()) {
    const at = `${field}: attachment ${n + 1} (${attachment.namespace}/${attachment.name})`;
    // Without NADs in the view (no cluster) existence and isolation cannot be judged.
    if (view.knows("NetworkAttachmentDefinition")) {
      if (!view.nad(attachment.namespace, attachment.name)) {
        violations.push(
          forbidden(
            `${at}: NetworkAttachmentDefinition ${attachment.namespace}/${attachment.name} does not exist`,
          ),
        );
      } else if (
        attachment.namespace !== request.namespace &&
        !isShared(attachment.namespace, view, settings)
      ) {
        const shared = settings.sharedAttachmentNamespaces;
        violations.push(
          forbidden(
            `${at}: pods of namespace ${request.namespace} may only use NetworkAttachmentDefinitions of their own namespace` +
              (shared.length ? ` or of ${shared.join(", ")}` : "") +
              ` (or of a namespace labelled ${SHARED_ATTACHMENTS_LABEL}=true)`,
          ),
        );
      }
    }
    if (attachment.interface !== undefined) {
      const problem = interfaceNameProblem(attachment.interface);
      const earlier = interfaces.get(attachment.interface);
      if (attachment.interface === "eth0")
        violations.push(
          forbidden(
            `${at}: interface eth0 is the pod's primary interface; name the attachment's interface otherwise (e.g. net1)`,
          ),
        );
      else if (problem) violations.push(malformed(`${at}: ${problem}`));
      else if (earlier !== undefined)
        violations.push(
          forbidden(`${at}: interface ${attachment.interface} is already used by attachment ${earlier}`),
        );
      else interfaces.set(attachment.interface, n + 1);
    }
    for (const ip of attachment.ips ?? []) {
      const address = addressOf(ip);
      if (!isIpAddress(address)) {
        violations.push(malformed(`${at}: ips: ${JSON.stringify(ip)} is not an IP address`));
        continue;
      }
      const network = attachmentNetwork(attachment, view);
      if (network && !network.cidrs.some((c) => cidrContains(c, address))) {
        violations.push(
          forbidden(`${at}: ips: ${address} is outside ${network.from} (${network.cidrs.join(",")})`),
        );
        continue;
      }
      const holders = view.podsWithStaticIp(address).filter((p) => p.key !== self);
      if (holders.length > 0)
        violations.push(
          forbidden(`${at}: ips: ${address} is already held by pod ${holders.map((p) => p.key).join(", ")}`),
        );
    }
    if (attachment.mac !== undefined) {
      if (!isUnicastMac(attachment.mac)) {
        violations.push(
          malformed(
            `${at}: mac: expected a unicast MAC address (e.g. "0a:58:0a:10:00:05"), found ${JSON.stringify(attachment.mac)}`,
          ),
        );
        continue;
      }
      const holders = view
        .podsWithAttachmentMac(attachment.namespace, attachment.name, attachment.mac)
        .filter((p) => p.key !== self);
      if (holders.length > 0)
        violations.push(
          forbidden(
            `${at}: mac: ${attachment.mac} is already used on this network by pod ${holders.map((p) => p.key).join(", ")}`,
          ),
        );
    }
  }
  return violations;
}

/** The attachments a pod gets from its namespace when it names none itself. */
export function defaultAttachmentsFor(request: AdmissionRequest, view: ClusterView): string | undefined {
  if (annotationsOf(request.object)[ANNOTATION.networks] !== undefined) return undefined;
  return view.namespace(request.namespace)?.annotations[DEFAULT_NETWORKS_ANNOTATION] || undefined;
}

/**
 * The node selector the pod needs once every referenced NAD's selector is
 * merged in (`changed` only when that adds something). Two NADs, or a NAD and
 * the pod, asking for different values of one key is a violation naming
 * both, rather than letting the last one win.
 */
export function attachmentSelector(
  networks: string,
  current: Record<string, string> | undefined,
  namespace: string,
  view: ClusterView,
): { violations: Violation[]; changed: Record<string, string> | undefined } {
  const parsed = parseNetworks(networks, namespace);
  if (!parsed.ok) return { violations: [], changed: undefined }; // the validating webhook says what is wrong
  const violations: Violation[] = [];
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
        violations.push(
          forbidden(
            `spec.nodeSelector: ${key}: ${askedBy.get(key)} asks for ${JSON.stringify(selector[key])} and NetworkAttachmentDefinition ${nad.key} for ${JSON.stringify(value)}; no node can satisfy both`,
          ),
        );
        continue;
      }
      if (!(key in selector)) added = true;
      selector[key] = value;
      if (!askedBy.has(key)) askedBy.set(key, `NetworkAttachmentDefinition ${nad.key}`);
    }
  }
  return { violations, changed: added && violations.length === 0 ? selector : undefined };
}
