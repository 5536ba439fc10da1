/** Settings the rules and the OVN writers read, from the service configuration. */

/** How pods get their network (DESIGN.md, network models). */
export type NetworkModel = "kube-ovn" | "ovn-kubernetes";

/** The control plane the service runs beside (`--alongside`): its rows are never the service's to write. */
export type Alongside = "kube-ovn";

export interface RuleSettings {
  /** Largest QoS rate a pod may ask for, Mbit/s. */
  maxRateMbps: number;
  /** The subnet of pods that name none and whose namespace no subnet claims. */
  defaultSubnet: string;
  networkModel: NetworkModel;
  /** CNI plugins (and IPAM plugins) a NetworkAttachmentDefinition may use. */
  cniPlugins: readonly string[];
  /** Namespaces whose NetworkAttachmentDefinitions pods of any namespace may use. */
  sharedAttachmentNamespaces: readonly string[];
}
