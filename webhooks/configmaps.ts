/**
 * Rules for ConfigMaps: only the external gateway's
 * (`kube-system/ovn-external-gw-config`, seed 003) is ours. It is checked key
 * by key here; OVN Northbound is programmed from the ConfigMap as stored
 * (ovn/programmer.ts), never from the request.
 */
import { GATEWAY_CONFIGMAP } from "../domain/annotations.js";
import { GATEWAY_KEY, readGatewayConfig } from "../domain/gateway-config.js";
import type { ClusterView } from "../domain/view.js";
import type { AdmissionRequest } from "./envelope.js";

import type { RuleSettings } from "../domain/settings.js";
import { allow, reject, type Verdict } from "./verdict.js";

export function validateConfigMap(
  request: AdmissionRequest,
  view: ClusterView,
  _settings: RuleSettings,
): Verdict {
  if (`${request.namespace}/${request.name}` !== GATEWAY_CONFIGMAP) return allow();
  const data = (request.object?.data ?? {}) as Record<string, string>;
  const reading = readGatewayConfig(data);
  if (reading.problems.length > 0) {
    return reject(`ConfigMap ${GATEWAY_CONFIGMAP}: ${reading.problems.join("; ")}`, reading.warnings);
  }
  const warnings = [...reading.warnings];
  const config = reading.enabled ? reading.config : undefined;
  if (config?.mode === "centralized" && view.knows("Node")) {
    const unknown = config.nodes.filter((n) => !view.node(n));
    if (unknown.length > 0)
      warnings.push(
        `data["${GATEWAY_KEY.nodes}"]: no node named ${unknown.join(", ")} (yet); the gateway is programmed without it until it joins`,
      );
  }
  return allow({ warnings });
}
