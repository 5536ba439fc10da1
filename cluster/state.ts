/**
 * The store behind the cluster view (domain/view.ts): what the informers
 * (cluster/informers.ts) listed and watched, with an index for every question
 * a rule asks; tests and a service with no cluster fill it from plain objects.
 * Rules run synchronously and events are applied between admissions, so one
 * admission always sees one consistent state.
 */
import type { KubeObject } from "../domain/kube.js";
import { ENCAP_IP_ANNOTATION, parseNodeNetworks } from "../domain/planes.js";
import { ANNOTATION, GATEWAY_CONFIGMAP } from "../domain/annotations.js";
import { parseNetworks, type Attachment } from "../domain/attachments.js";
import { addressOf, canonicalIp, isIpAddress } from "../domain/addresses.js";
import {
  trim,
  type ConfigMapFacts,
  type EndpointSliceFacts,
  type FactsByKind,
  type ServiceFacts,
  type NadFacts,
  type NamespaceFacts,
  type NodeFacts,
  type PodFacts,
  type SubnetFacts,
} from "../domain/facts.js";
import type { Kind } from "../domain/kinds.js";

import type { ClusterView, StoredChange } from "../domain/view.js";

type IndexFn<T> = (facts: T) => string[];

/** Objects of one kind by key, with multi-valued indexes kept right on every change. */
class Store<T extends { key: string }> {
  readonly objects = new Map<string, T>();
  private readonly indexes = new Map<string, Map<string, Set<string>>>();

  constructor(private readonly indexFns: Record<string, IndexFn<T>>) {
    for (const name of Object.keys(indexFns)) this.indexes.set(name, new Map());
  }

  put(facts: T): void {
    this.remove(facts.key);
    this.objects.set(facts.key, facts);
    for (const [name, fn] of Object.entries(this.indexFns)) {
      const index = this.indexes.get(name) as Map<string, Set<string>>;
      for (const value of fn(facts)) {
        let keys = index.get(value);
        if (!keys) index.set(value, (keys = new Set()));
        keys.add(facts.key);
      }
    }
  }

  remove(key: string): void {
    const old = this.objects.get(key);
    if (!old) return;
    this.objects.delete(key);
    for (const [name, fn] of Object.entries(this.indexFns)) {
      const index = this.indexes.get(name) as Map<string, Set<string>>;
      for (const value of fn(old)) {
        const keys = index.get(value);
        keys?.delete(key);
        if (keys?.size === 0) index.delete(value);
      }
    }
  }

  /** Replaces everything with `all` (a relist), returning nothing: only what changed is touched. */
  replace(all: T[]): void {
    const fresh = new Set(all.map((f) => f.key));
    for (const key of [...this.objects.keys()]) if (!fresh.has(key)) this.remove(key);
    for (const facts of all) this.put(facts);
  }

  lookup(index: string, value: string): T[] {
    const keys = this.indexes.get(index)?.get(value);
    return keys ? [...keys].map((k) => this.objects.get(k) as T) : [];
  }

  values(index: string): string[] {
    return [...(this.indexes.get(index)?.keys() ?? [])];
  }
}

const parsedAttachments = new WeakMap<PodFacts, readonly Readonly<Attachment>[]>();

/** A pod's attachments, parsed once per version of its facts (facts are never mutated); malformed reads as none, the pod rule reports it. */
function attachmentsOf(pod: PodFacts): readonly Readonly<Attachment>[] {
  let attachments = parsedAttachments.get(pod);
  if (!attachments) {
    const text = pod.annotations[ANNOTATION.networks];
    const parsed = text ? parseNetworks(text, pod.namespace) : undefined;
    attachments = parsed?.ok ? parsed.value : [];
    parsedAttachments.set(pod, attachments);
  }
  return attachments;
}

function staticIps(pod: PodFacts): string[] {
  const ips: string[] = [];
  for (const [key, value] of Object.entries(pod.annotations)) {
    if (key === ANNOTATION.ipAddress || key.endsWith(`.${ANNOTATION.ipAddress}`)) {
      ips.push(
        ...value
          .split(",")
          .map((s) => addressOf(s.trim()))
          .filter(Boolean),
      );
    }
  }
  for (const attachment of attachmentsOf(pod)) ips.push(...(attachment.ips ?? []).map((ip) => addressOf(ip)));
  return ips;
}

const one = (v: string | undefined): string[] => (v ? [v] : []);
/** One spelling per address, so that the index finds "fd00::1" under "fd00:0::1"; other text as it is. */
const sameSpelling = (ip: string): string => (isIpAddress(ip) ? canonicalIp(ip) : ip);

export class ClusterState implements ClusterView {
  private readonly stores = {
    Node: new Store<NodeFacts>({
      plane: (n) => Object.keys(parseNodeNetworks(n.annotations[ANNOTATION.nodeNetworks])),
      // Canonical, so "fd00::1" and "fd00:0::1" are one address.
      encapIp: (n) =>
        Object.values(parseNodeNetworks(n.annotations[ANNOTATION.nodeNetworks])).map(canonicalIp),
    }),
    Namespace: new Store<NamespaceFacts>({}),
    Pod: new Store<PodFacts>({
      node: (p) => one(p.nodeName),
      eip: (p) => one(p.annotations[ANNOTATION.eip]).map(sameSpelling),
      snat: (p) => one(p.annotations[ANNOTATION.snat]).map(sameSpelling),
      staticIp: staticIps,
      nad: (p) => attachmentsOf(p).map((a) => `${a.namespace}/${a.name}`),
      attachmentMac: (p) =>
        attachmentsOf(p)
          .filter((a) => a.mac)
          .map((a) => `${a.namespace}/${a.name}|${(a.mac as string).toLowerCase()}`),
      subnet: (p) =>
        p.annotations[ANNOTATION.allocated] === "true" ? one(p.annotations[ANNOTATION.logicalSwitch]) : [],
      // Pods that recorded their encap IP, by node.
      encapNode: (p) => (p.annotations[ENCAP_IP_ANNOTATION] && p.nodeName ? [p.nodeName] : []),
    }),
    Subnet: new Store<SubnetFacts>({ namespace: (s) => [...s.namespaces] }),
    Vpc: new Store<FactsByKind["Vpc"]>({}),
    VpcNatGateway: new Store<FactsByKind["VpcNatGateway"]>({}),
    NetworkAttachmentDefinition: new Store<NadFacts>({ provider: (n) => one(n.provider) }),
    ConfigMap: new Store<ConfigMapFacts>({}),
    Service: new Store<ServiceFacts>({}),
    EndpointSlice: new Store<EndpointSliceFacts>({ service: (e) => one(e.service) }),
    Endpoints: new Store<EndpointSliceFacts>({ service: (e) => one(e.service) }),
  } satisfies { [K in Kind]: Store<FactsByKind[K]> };

  private readonly unsynced: Set<Kind>;
  private readonly listed = new Set<Kind>();
  private readonly listeners: Array<(change: StoredChange) => void> = [];

  /** `waitFor`: kinds that must be listed before the view reports synced. */
  constructor(waitFor: Kind[] = []) {
    this.unsynced = new Set(waitFor);
  }

  /** A synced view of plain objects. */
  static of(objects: Partial<Record<Kind, KubeObject[]>>): ClusterState {
    const state = new ClusterState();
    for (const [kind, list] of Object.entries(objects) as Array<[Kind, KubeObject[]]>)
      state.replace(kind, list);
    return state;
  }

  get synced(): boolean {
    return this.unsynced.size === 0;
  }

  /** Kinds not listed yet. */
  waitingFor(): Kind[] {
    return [...this.unsynced];
  }

  /** Calls `listener` after every stored change the view applies; returns the way to stop. */
  onChange(listener: (change: StoredChange) => void): () => void {
    this.listeners.push(listener);
    return () => {
      const at = this.listeners.indexOf(listener);
      if (at >= 0) this.listeners.splice(at, 1);
    };
  }

  private tell(change: StoredChange): void {
    for (const listener of this.listeners) listener(change);
  }

  apply(kind: Kind, event: "ADDED" | "MODIFIED" | "DELETED", object: KubeObject): void {
    const facts = trim[kind](object);
    const store = this.stores[kind] as Store<ObjectFactsOf<typeof kind>>;
    const previous = store.objects.get(facts.key);
    if (event === "DELETED") store.remove(facts.key);
    else store.put(facts);
    if (this.listeners.length) this.tell({ kind, event, facts, previous } as StoredChange);
  }

  /** A full list: objects not in it are gone. */
  replace(kind: Kind, objects: KubeObject[]): void {
    this.replaceTrimmed(
      kind,
      objects.map((o) => trim[kind](o)),
    );
  }

  /** A full list already trimmed (the reflector trims each page as it arrives, so whole objects never pile up). */
  replaceTrimmed<K extends Kind>(kind: K, facts: Array<FactsByKind[K]>): void {
    const store = this.stores[kind] as unknown as Store<FactsByKind[K]>;
    store.replace(facts);
    this.unsynced.delete(kind);
    this.listed.add(kind);
    if (this.listeners.length) this.tell({ kind, event: "RELISTED" });
  }

  knows(kind: Kind) {
    return this.listed.has(kind);
  }
  namespace(name: string) {
    return this.stores.Namespace.objects.get(name);
  }
  node(name: string) {
    return this.stores.Node.objects.get(name);
  }
  planesOf(node: string) {
    return parseNodeNetworks(this.node(node)?.annotations[ANNOTATION.nodeNetworks]);
  }
  nodesWithPlane(plane: string) {
    return this.stores.Node.lookup("plane", plane).map((n) => n.name);
  }
  planes() {
    return this.stores.Node.values("plane").sort();
  }
  nodesWithPlanes() {
    return [
      ...new Set(
        this.stores.Node.values("plane").flatMap((plane) => this.stores.Node.lookup("plane", plane)),
      ),
    ];
  }
  podsWithEncapIp() {
    return this.stores.Pod.values("encapNode").flatMap((node) => this.stores.Pod.lookup("encapNode", node));
  }
  nodesWithEncapIp(ip: string) {
    return isIpAddress(ip) ? this.stores.Node.lookup("encapIp", canonicalIp(ip)).map((n) => n.name) : [];
  }
  pod(namespace: string, name: string) {
    return this.stores.Pod.objects.get(`${namespace}/${name}`);
  }
  podsOnNode(node: string) {
    return this.stores.Pod.lookup("node", node);
  }
  podsWithEip(ip: string) {
    return this.stores.Pod.lookup("eip", sameSpelling(ip));
  }
  podsWithSnat(ip: string) {
    return this.stores.Pod.lookup("snat", sameSpelling(ip));
  }
  podsWithNat() {
    const pods = new Set<PodFacts>();
    for (const index of ["eip", "snat"])
      for (const ip of this.stores.Pod.values(index))
        for (const pod of this.stores.Pod.lookup(index, ip)) pods.add(pod);
    return [...pods];
  }
  nodes() {
    return [...this.stores.Node.objects.values()];
  }
  podsInSubnet(subnet: string) {
    return this.stores.Pod.lookup("subnet", subnet);
  }
  podsWithAddresses() {
    return this.stores.Pod.values("subnet").flatMap((subnet) => this.stores.Pod.lookup("subnet", subnet));
  }
  podsWithStaticIp(ip: string) {
    return this.stores.Pod.lookup("staticIp", ip);
  }
  subnet(name: string) {
    return this.stores.Subnet.objects.get(name);
  }
  vpc(name: string) {
    return this.stores.Vpc.objects.get(name);
  }
  subnets() {
    return [...this.stores.Subnet.objects.values()];
  }
  subnetsOfNamespace(namespace: string) {
    return this.stores.Subnet.lookup("namespace", namespace);
  }
  nad(namespace: string, name: string) {
    return this.stores.NetworkAttachmentDefinition.objects.get(`${namespace}/${name}`);
  }
  nadsWithProvider(provider: string) {
    return this.stores.NetworkAttachmentDefinition.lookup("provider", provider);
  }
  nads() {
    return [...this.stores.NetworkAttachmentDefinition.objects.values()];
  }
  podsWithAttachmentMac(namespace: string, name: string, mac: string) {
    return this.stores.Pod.lookup("attachmentMac", `${namespace}/${name}|${mac.toLowerCase()}`);
  }
  podsUsingNad(namespace: string, name: string) {
    return this.stores.Pod.lookup("nad", `${namespace}/${name}`);
  }
  gatewayConfig() {
    return this.stores.ConfigMap.objects.get(GATEWAY_CONFIGMAP);
  }
  service(namespace: string, name: string) {
    return this.stores.Service.objects.get(`${namespace}/${name}`);
  }
  services() {
    return [...this.stores.Service.objects.values()];
  }
  endpointsOf(service: string) {
    const slices = this.listed.has("EndpointSlice") ? this.stores.EndpointSlice : this.stores.Endpoints;
    return slices.lookup("service", service);
  }
  sizes() {
    return Object.fromEntries(Object.entries(this.stores).map(([kind, store]) => [kind, store.objects.size]));
  }
}

type ObjectFactsOf<K extends Kind> = FactsByKind[K];
