/**
 * A pod's EIP and SNAT address (`ovn.kubernetes.io/eip`, `snat`, seed 003):
 * a valid address of the external network, an EIP held by one pod and never
 * also an SNAT address. Once the pod has its IP, the NAT intent writes its
 * row; the transaction that writes it is what finally decides who holds an
 * address.
 */
import { ANNOTATION, annotationField, annotationsOf, GATEWAY_CONFIGMAP } from "../../domain/annotations.js";
import { isIpAddress } from "../../domain/addresses.js";
import type { PodFacts } from "../../domain/facts.js";
import {
  externalAddressProblem,
  GATEWAY_KEY,
  gatewayOf,
  type GatewayMode,
} from "../../domain/gateway-config.js";
import { holdsAddresses, natWantOf, type NatClaim } from "../../domain/nat.js";
import type { RuleSettings } from "../../domain/settings.js";
import { DEFAULT_VPC, subnetOfPod } from "../../domain/subnets.js";
import type { ClusterView } from "../../domain/view.js";
import { forbidden, malformed, type Violation } from "../../domain/violations.js";
import type { AdmissionRequest } from "../envelope.js";

const named = (pods: PodFacts[]): string =>
  pods.map((p) => `${p.key}${p.terminating ? " (terminating)" : ""}`).join(", ");

export interface ExternalAddresses {
  violations: Violation[];
  /** The address to claim at admission, when the pod asks for a new one and nothing is wrong. */
  claim?: NatClaim;
}

export function checkExternalAddresses(
  request: AdmissionRequest,
  view: ClusterView,
  settings: RuleSettings,
): ExternalAddresses {
  const now = annotationsOf(request.object);
  const before = annotationsOf(request.oldObject);
  const eip = now[ANNOTATION.eip];
  const snat = now[ANNOTATION.snat];
  const name = request.object?.metadata?.name || request.name;
  const self = `${request.namespace}/${name}`;
  // Dropping both releases the row the pod had, once the API server stores the pod without them.
  if (eip === undefined && snat === undefined) return { violations: [] };
  const malformedValues = [
    [ANNOTATION.eip, eip],
    [ANNOTATION.snat, snat],
  ].flatMap(([key, value]) =>
    value !== undefined && !isIpAddress(value)
      ? [
          malformed(
            `${annotationField(key as string)}: expected an IP address (e.g. "172.56.0.233"), found ${JSON.stringify(value)}`,
          ),
        ]
      : [],
  );
  if (malformedValues.length > 0) return { violations: malformedValues };
  if (eip !== undefined && snat !== undefined) {
    return {
      violations: [
        forbidden(
          `${annotationField(ANNOTATION.eip)} and ${annotationField(ANNOTATION.snat)}: a pod has either an EIP (its own address, both directions) or an SNAT address (shared, outbound only), not both; found eip ${eip} and snat ${snat}`,
        ),
      ],
    };
  }
  const key = eip !== undefined ? ANNOTATION.eip : ANNOTATION.snat;
  const address = (eip ?? snat) as string;
  const field = annotationField(key);
  const refused = (message: string): ExternalAddresses => ({
    violations: [forbidden(`${field}: ${message}`)],
  });
  // The gateway ConfigMap serves the default VPC (seed 003); a custom VPC has its own NAT gateway.
  const subnet = subnetOfPod(request.namespace, now, view, settings.defaultSubnet);
  if (subnet?.vpc && subnet.vpc !== DEFAULT_VPC) {
    return refused(
      `the pod's subnet ${subnet.name} is in VPC ${subnet.vpc}; EIP and SNAT through ${GATEWAY_CONFIGMAP} serve the default VPC ${DEFAULT_VPC} only (a custom VPC uses a VpcNatGateway)`,
    );
  }
  let mode: GatewayMode = "centralized";
  if (view.knows("ConfigMap")) {
    const reading = gatewayOf(view);
    if (!reading.enabled)
      return refused(
        `the external gateway is not enabled (ConfigMap ${GATEWAY_CONFIGMAP} with ${GATEWAY_KEY.enabled}: "true")`,
      );
    if (!reading.config)
      return refused(`ConfigMap ${GATEWAY_CONFIGMAP} is not usable: ${reading.problems.join("; ")}`);
    mode = reading.config.mode;
    const problem = externalAddressProblem(address, reading.config.address, reading.config.nicIp);
    if (problem) return refused(problem);
  }
  const others = (pods: PodFacts[]) => pods.filter((p) => p.key !== self && holdsAddresses(p));
  const holders = others(view.podsWithEip(address));
  if (holders.length > 0) return refused(`${address} is already the EIP of pod ${named(holders)}`);
  if (eip !== undefined) {
    const sharing = others(view.podsWithSnat(eip));
    if (sharing.length > 0) return refused(`${eip} is already the SNAT address of pod ${named(sharing)}`);
  }
  // The address is held from the admission that asked for it; its row is programmed from the stored pod.
  if (request.operation === "UPDATE" && eip === before[ANNOTATION.eip] && snat === before[ANNOTATION.snat])
    return { violations: [] };
  const holds = natWantOf(request.namespace, name, now, mode, settings.networkModel).holds;
  if (!holds) return { violations: [] };
  return { violations: [], claim: { pod: self, uid: request.object?.metadata?.uid ?? "", holds } };
}
