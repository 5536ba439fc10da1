/**
 * Rules for Nodes (CREATE and UPDATE, not nodes/status): the planes of
 * `ovn.kubernetes.io/node_networks` and the tunnel interfaces are checked, a
 * plane that running pods use cannot be taken away; the node gets one label
 * per plane (mutate) and, once every check passed, its Open_vSwitch encap IPs
 * programmed (validate).
 */
import type { ClusterView } from "../domain/view.js";
import { ANNOTATION, annotationField, annotationsOf } from "../domain/annotations.js";
import { interfaceNameProblem } from "../domain/attachments.js";
import type { AdmissionRequest } from "./envelope.js";
import type { KubeObject } from "../domain/kube.js";
import { buildPatch, editable } from "./patch.js";
import { PLANE_LABEL_PREFIX, planeLabel, readNodeNetworks } from "../domain/planes.js";
import type { RuleSettings } from "../domain/settings.js";
import { subnetOfPod } from "../domain/subnets.js";
import { allow, refuse, type Verdict } from "./verdict.js";
import { forbidden, malformed, type Violation } from "../domain/violations.js";
import type { Intent } from "../domain/intents.js";
import { GATEWAY_ANNOTATION, MANAGEMENT_MAC_ANNOTATION, readNodeGateway } from "../domain/topology.js";
import { addressOf } from "../domain/addresses.js";

const LITERAL_INTERFACE = /^[A-Za-z0-9_.@:-]+$/;

function nodeName(request: AdmissionRequest): string {
  return request.name || request.object?.metadata?.name || "";
}

function checkTunnelInterfaces(value: string): string | undefined {
  const field = annotationField(ANNOTATION.tunnelInterface);
  const entries = value.split(",").map((s) => s.trim());
  for (const entry of entries) {
    if (entry === "")
      return `${field}: expected comma-separated interface names or regular expressions, found an empty entry in ${JSON.stringify(value)}`;
    if (LITERAL_INTERFACE.test(entry)) {
      const problem = interfaceNameProblem(entry);
      if (problem) return `${field}: ${problem}`;
      continue;
    }
    try {
      new RegExp(entry);
    } catch (err) {
      return `${field}: ${JSON.stringify(entry)} is neither an interface name nor a regular expression that compiles (${(err as Error).message})`;
    }
  }
  return undefined;
}

/** Running pods on `node` whose subnet uses `plane`. */
function podsUsingPlane(node: string, plane: string, view: ClusterView, settings: RuleSettings): string[] {
  return view
    .podsOnNode(node)
    .filter((p) => !p.terminating && p.phase !== "Succeeded" && p.phase !== "Failed")
    .filter(
      (p) => subnetOfPod(p.namespace, p.annotations, view, settings.defaultSubnet)?.nodeNetwork === plane,
    )
    .map((p) => p.key)
    .sort();
}

function named(keys: string[], most = 5): string {
  return keys.length <= most
    ? keys.join(", ")
    : `${keys.slice(0, most).join(", ")} and ${keys.length - most} more`;
}

/** seed 002's gateway-init, declared on the Node: well-formed, and its physical IP no other gateway node's. */
function gatewayViolations(name: string, text: string | undefined, view: ClusterView): Violation[] {
  if (text === undefined) return [];
  const field = annotationField(GATEWAY_ANNOTATION);
  const { gateway, problems } = readNodeGateway(text);
  if (!gateway) return problems.map((p) => malformed(`${field}: ${p}`));
  const ip = addressOf(gateway.physicalIp);
  const holders = view
    .nodes()
    .filter((n) => n.name !== name && n.annotations[GATEWAY_ANNOTATION])
    .filter((n) => {
      const other = readNodeGateway(n.annotations[GATEWAY_ANNOTATION] as string).gateway;
      return other !== undefined && addressOf(other.physicalIp) === ip;
    })
    .map((n) => n.name)
    .sort();
  if (holders.length)
    return [forbidden(`${field}: physical-ip ${ip} is already node ${holders.join(", ")}'s gateway address`)];
  const internal = view.nodes().find((n) => n.name !== name && n.internalIP === ip);
  return internal ? [forbidden(`${field}: physical-ip ${ip} is node ${internal.name}'s InternalIP`)] : [];
}

export function validateNode(request: AdmissionRequest, view: ClusterView, settings: RuleSettings): Verdict {
  const name = nodeName(request);
  const annotations = annotationsOf(request.object);
  const violations: Violation[] = [];
  // The view's copy too: kube-apiserver 1.20.2 sends a validating webhook a Node oldObject equal to the new one.
  const hostSubnetBefore = [
    annotationsOf(request.oldObject)[ANNOTATION.hostSubnet],
    view.node(name)?.annotations[ANNOTATION.hostSubnet],
  ].find((before) => before && before !== annotations[ANNOTATION.hostSubnet]);
  if (hostSubnetBefore) {
    violations.push(
      forbidden(
        `${annotationField(ANNOTATION.hostSubnet)}: node ${name}'s subnet is allocated and never changes (was ${hostSubnetBefore}, found ${JSON.stringify(annotations[ANNOTATION.hostSubnet] ?? null)}); its pods' addresses are in it`,
      ),
    );
  }
  const networks = readNodeNetworks(annotations[ANNOTATION.nodeNetworks]);
  const field = annotationField(ANNOTATION.nodeNetworks);
  if (networks.problems.length > 0) violations.push(malformed(`${field}: ${networks.problems.join("; ")}`));
  for (const [plane, ip] of Object.entries(networks.planes)) {
    const holders = view.nodesWithEncapIp(ip).filter((n) => n !== name);
    if (holders.length > 0) {
      violations.push(
        forbidden(
          `${field}: plane ${plane}: encap IP ${ip} is already used by node ${holders.sort().join(", ")}`,
        ),
      );
    }
  }
  violations.push(...gatewayViolations(name, annotations[GATEWAY_ANNOTATION], view));
  const tunnel = annotations[ANNOTATION.tunnelInterface];
  const tunnelProblem = tunnel === undefined ? undefined : checkTunnelInterfaces(tunnel);
  if (tunnelProblem) violations.push(malformed(tunnelProblem));
  // The planes the node had: its oldObject, and the view's copy. kube-apiserver 1.20.2 was seen to send
  // a validating webhook a Node oldObject equal to the new object (the mutating webhook got the stored one).
  const previous = {
    ...view.planesOf(name),
    ...readNodeNetworks(annotationsOf(request.oldObject)[ANNOTATION.nodeNetworks]).planes,
  };
  // A plane is only taken away by an annotation that parses: a malformed one is reported above.
  if (request.operation === "UPDATE" && networks.problems.length === 0) {
    for (const plane of Object.keys(previous)) {
      if (plane in networks.planes) continue;
      const users = podsUsingPlane(name, plane, view, settings);
      if (users.length > 0) {
        violations.push(
          forbidden(
            `${field}: plane ${plane} cannot be removed from node ${name}: running pods use it: ${named(users)}`,
          ),
        );
      }
    }
  }
  if (violations.length > 0) return refuse(violations);
  // Nothing is programmed from the request: the node's Open_vSwitch follows the Node the API server
  // stores (ovn/programmer.ts), so a review no API server sent, or one a later webhook denies, changes nothing.
  return allow();
}

/**
 * ovn-kubernetes (seed 002): a node without its subnet claims the next free
 * block of --cluster-ip-subnet; the answer is its `ovn_host_subnet`.
 */
function nodeSubnetClaim(request: AdmissionRequest, settings: RuleSettings | undefined): Intent[] {
  if (settings?.networkModel !== "ovn-kubernetes") return [];
  const object = request.object as KubeObject;
  if (annotationsOf(object)[ANNOTATION.hostSubnet]) return [];
  const node = object.metadata?.name ?? request.name;
  return [
    {
      kind: "node-subnet-claim",
      owner: node,
      spec: {
        node,
        uid: object.metadata?.uid ?? "",
        hasManagementMac: Boolean(annotationsOf(object)[MANAGEMENT_MAC_ANNOTATION]),
      },
      preview: true,
    },
  ];
}

export function mutateNode(request: AdmissionRequest, _view?: ClusterView, settings?: RuleSettings): Verdict {
  const object = request.object as KubeObject;
  const annotations = annotationsOf(object);
  const intents = nodeSubnetClaim(request, settings);
  const networks = readNodeNetworks(annotations[ANNOTATION.nodeNetworks]);
  // An annotation that does not parse is denied by validateNode; leave the labels as they are.
  if (networks.problems.length > 0) return allow({ intents });
  const node = editable(object);
  node.metadata ??= {};
  const labels: Record<string, string> = { ...(node.metadata.labels ?? {}) };
  for (const key of Object.keys(labels)) {
    if (key.startsWith(PLANE_LABEL_PREFIX) && !(key.slice(PLANE_LABEL_PREFIX.length) in networks.planes))
      delete labels[key];
  }
  for (const plane of Object.keys(networks.planes)) labels[planeLabel(plane)] = "true";
  if (Object.keys(labels).length > 0 || node.metadata.labels) node.metadata.labels = labels;

  return allow({ patch: buildPatch(object, node), intents });
}
