/**
 * Network attachments: `k8s.v1.cni.cncf.io/networks` on a pod, in both forms
 * Multus accepts (a `ns/name@iface` comma list, or a JSON list), and the
 * NetworkAttachmentDefinition's `k8s.v1.cni.cncf.io/nodeSelector`. One parser
 * for the rules and the view.
 */

export interface Attachment {
  namespace: string;
  name: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  defaultRoute?: string[];
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function isObjectName(s: string): boolean {
  return s.length > 0 && s.length <= 253 && NAME.test(s);
}

function stringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}

function parseJsonForm(text: string, podNamespace: string): Parsed<Attachment[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return {
      ok: false,
      error: `expected a JSON list of attachments, but the JSON does not parse: ${(err as Error).message}`,
    };
  }
  if (!Array.isArray(parsed)) return { ok: false, error: "expected a JSON list of attachments" };
  const attachments: Attachment[] = [];
  for (const [i, element] of parsed.entries()) {
    const at = `element ${i + 1}`;
    if (typeof element !== "object" || element === null || Array.isArray(element)) {
      return { ok: false, error: `${at}: expected an object with "name", found ${JSON.stringify(element)}` };
    }
    const e = element as Record<string, unknown>;
    if (typeof e.name !== "string" || !isObjectName(e.name)) {
      return {
        ok: false,
        error:
          `${at}: "name" must be a NetworkAttachmentDefinition name, found ${JSON.stringify(e.name)}` +
          // The JSON form takes the namespace apart, unlike "namespace/name" in the short form (seed 001 mixes them).
          (typeof e.name === "string" && /^[^/]+\/[^/]+$/.test(e.name) && e.namespace === undefined
            ? `; in the JSON form the namespace goes apart: {"name": ${JSON.stringify(e.name.split("/")[1])}, "namespace": ${JSON.stringify(e.name.split("/")[0])}}`
            : ""),
      };
    }
    if (e.namespace !== undefined && (typeof e.namespace !== "string" || !isObjectName(e.namespace))) {
      return {
        ok: false,
        error: `${at}: "namespace" must be a namespace name, found ${JSON.stringify(e.namespace)}`,
      };
    }
    const attachment: Attachment = {
      namespace: (e.namespace as string | undefined) ?? podNamespace,
      name: e.name,
    };
    if (e.interface !== undefined) {
      if (typeof e.interface !== "string")
        return {
          ok: false,
          error: `${at}: "interface" must be a string, found ${JSON.stringify(e.interface)}`,
        };
      attachment.interface = e.interface;
    }
    if (e.ips !== undefined) {
      if (!stringList(e.ips))
        return { ok: false, error: `${at}: "ips" must be a list of strings, found ${JSON.stringify(e.ips)}` };
      attachment.ips = e.ips;
    }
    if (e.mac !== undefined) {
      if (typeof e.mac !== "string")
        return { ok: false, error: `${at}: "mac" must be a string, found ${JSON.stringify(e.mac)}` };
      attachment.mac = e.mac;
    }
    if (e["default-route"] !== undefined) {
      if (!stringList(e["default-route"])) {
        return {
          ok: false,
          error: `${at}: "default-route" must be a list of gateway addresses, found ${JSON.stringify(e["default-route"])}`,
        };
      }
      attachment.defaultRoute = e["default-route"];
    }
    attachments.push(attachment);
  }
  return { ok: true, value: attachments };
}

const TEXT_ENTRY = /^(?:([^/@]+)\/)?([^/@]+)(?:@(.+))?$/;

function parseTextForm(text: string, podNamespace: string): Parsed<Attachment[]> {
  const attachments: Attachment[] = [];
  const entries = text.split(",");
  for (let i = 0; i < entries.length; i++) {
    const entry = (entries[i] as string).trim();
    // Only a denial spells out where: every pod of a Deployment passes through here.
    const at = () => `entry ${i + 1} (${JSON.stringify(entry)})`;
    const m = TEXT_ENTRY.exec(entry);
    if (!m) return { ok: false, error: `${at()}: expected [namespace/]name[@interface]` };
    const namespace = m[1];
    const name = m[2] as string;
    const iface = m[3];
    if (namespace !== undefined && !isObjectName(namespace))
      return { ok: false, error: `${at()}: ${JSON.stringify(namespace)} is not a namespace name` };
    if (!isObjectName(name))
      return {
        ok: false,
        error: `${at()}: ${JSON.stringify(name)} is not a NetworkAttachmentDefinition name`,
      };
    const attachment: Attachment = { namespace: namespace ?? podNamespace, name };
    if (iface !== undefined) attachment.interface = iface;
    attachments.push(attachment);
  }
  return { ok: true, value: attachments };
}

/**
 * The pods of a Deployment carry the same text, and both webhooks and the view
 * read it: results are kept for the texts seen last (frozen, so that no reader
 * changes what another is handed). Parsing was a third of a pod's rule.
 */
const parsedNetworks = new Map<string, Parsed<readonly Readonly<Attachment>[]>>();
const PARSED_NETWORKS_KEPT = 1024;
/** Longer texts are parsed each time: what is kept stays within a few MiB, whatever pods are sent. */
const PARSED_NETWORKS_LONGEST = 4096;

/** Parses the pod annotation; an error names the entry or element and what was expected. */
export function parseNetworks(text: string, podNamespace: string): Parsed<readonly Readonly<Attachment>[]> {
  if (text.length > PARSED_NETWORKS_LONGEST) return frozen(parseNetworksOnce(text, podNamespace));
  const key = `${podNamespace} ${text}`;
  let parsed = parsedNetworks.get(key);
  if (parsed !== undefined) return parsed;
  parsed = frozen(parseNetworksOnce(text, podNamespace));
  if (parsedNetworks.size >= PARSED_NETWORKS_KEPT)
    parsedNetworks.delete(parsedNetworks.keys().next().value as string);
  parsedNetworks.set(key, parsed);
  return parsed;
}

function frozen(parsed: Parsed<Attachment[]>): Parsed<readonly Readonly<Attachment>[]> {
  if (parsed.ok) {
    for (const attachment of parsed.value) {
      if (attachment.ips) Object.freeze(attachment.ips);
      if (attachment.defaultRoute) Object.freeze(attachment.defaultRoute);
      Object.freeze(attachment);
    }
    Object.freeze(parsed.value);
  }
  return Object.freeze(parsed);
}

function parseNetworksOnce(text: string, podNamespace: string): Parsed<Attachment[]> {
  const trimmed = text.trim();
  if (trimmed === "") return { ok: true, value: [] };
  return trimmed.startsWith("[")
    ? parseJsonForm(trimmed, podNamespace)
    : parseTextForm(trimmed, podNamespace);
}

/** Linux's IFNAMSIZ less the terminating NUL. */
export const MAX_INTERFACE_NAME = 15;

/** Why `name` cannot be a Linux interface name, or undefined when it can. */
export function interfaceNameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > MAX_INTERFACE_NAME) {
    return `interface name ${JSON.stringify(name)} is ${name.length} characters; Linux allows 1 to ${MAX_INTERFACE_NAME}`;
  }
  if (name === "." || name === ".." || /[\s/:]/.test(name)) {
    return `interface name ${JSON.stringify(name)} is not valid on Linux (no '/', ':', whitespace, "." or "..")`;
  }
  return undefined;
}

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/** A label key: an optional DNS-subdomain prefix and "/", then a name of at most 63 characters. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)))
    return `label key ${JSON.stringify(key)}: prefix must be a DNS subdomain`;
  if (!LABEL_NAME.test(name))
    return `label key ${JSON.stringify(key)}: name must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  return undefined;
}

/** `k8s.v1.cni.cncf.io/nodeSelector`: `key=value` pairs, comma-separated. */
export function parseNodeSelector(text: string): Parsed<Record<string, string>> {
  const selector: Record<string, string> = {};
  for (const [i, raw] of text.split(",").entries()) {
    const pair = raw.trim();
    const eq = pair.indexOf("=");
    if (eq <= 0) return { ok: false, error: `pair ${i + 1} (${JSON.stringify(pair)}): expected key=value` };
    const key = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const keyProblem = labelKeyProblem(key);
    if (keyProblem) return { ok: false, error: `pair ${i + 1}: ${keyProblem}` };
    if (value.length > 63 || !LABEL_VALUE.test(value)) {
      return {
        ok: false,
        error: `pair ${i + 1}: label value ${JSON.stringify(value)} must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`,
      };
    }
    if (key in selector && selector[key] !== value)
      return { ok: false, error: `pair ${i + 1}: key ${key} is given twice with different values` };
    selector[key] = value;
  }
  return { ok: true, value: selector };
}
