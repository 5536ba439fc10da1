/** Names of a pod's logical switch port: one function names a port, everywhere (NAT logical_port, OVS iface-id, the port itself). */
import type { NetworkModel } from "./settings.js";

/** Kube-OVN names a pod's port `<pod>.<namespace>`; ovn-kubernetes (seed 002) `<namespace>_<pod>`. */
export function portNameOf(namespace: string, name: string, model: NetworkModel): string {
  return model === "ovn-kubernetes" ? `${namespace}_${name}` : `${name}.${namespace}`;
}
