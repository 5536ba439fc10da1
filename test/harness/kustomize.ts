/**
 * Renders our kustomizations the way `kubectl kustomize` does, for the
 * subset of Kustomize the manifests use: `resources` (files and
 * directories), `images` and `patches` (a JSON 6902 patch file with a
 * kind/name target). Any other field fails loudly, so a kustomization that
 * grows past this subset cannot be tested by a renderer that ignores it.
 * (No kubectl or kustomize binary is built here; the yaml package and the
 * JSON Patch library do the work.)
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import jsonPatch, { type Operation } from "fast-json-patch";
import { parse, parseAllDocuments } from "yaml";

export interface ManifestObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
  };
  [field: string]: unknown;
}

interface Kustomization {
  resources?: string[];
  images?: Array<{ name: string; newName?: string; newTag?: string }>;
  patches?: Array<{ path: string; target: { kind: string; name?: string } }>;
}

const KNOWN = new Set(["apiVersion", "kind", "resources", "images", "patches"]);

/** The objects of a multi-document YAML file; a YAML error names the file. */
export function documents(file: string): ManifestObject[] {
  return parseAllDocuments(readFileSync(file, "utf8"))
    .map((d) => {
      if (d.errors.length) throw new Error(`${file}: ${d.errors[0]?.message}`);
      return d.toJS() as ManifestObject | null;
    })
    .filter((o): o is ManifestObject => o !== null);
}

/** Every object the kustomization in `dir` renders, in resource order. */
export function kustomize(dir: string): ManifestObject[] {
  const file = path.join(dir, "kustomization.yaml");
  if (!existsSync(file)) throw new Error(`${dir}: no kustomization.yaml`);
  const k = parse(readFileSync(file, "utf8")) as Kustomization & Record<string, unknown>;
  for (const field of Object.keys(k))
    if (!KNOWN.has(field))
      throw new Error(`${file}: field ${field} is not rendered by this test's kustomize`);
  const objects: ManifestObject[] = [];
  for (const resource of k.resources ?? []) {
    const at = path.join(dir, resource);
    objects.push(...(statSync(at).isDirectory() ? kustomize(at) : documents(at)));
  }
  for (const patch of k.patches ?? []) {
    const operations = parse(readFileSync(path.join(dir, patch.path), "utf8")) as Operation[];
    const targets = objects.filter(
      (o) => o.kind === patch.target.kind && (!patch.target.name || o.metadata.name === patch.target.name),
    );
    if (targets.length === 0)
      throw new Error(
        `${file}: patch ${patch.path} targets ${patch.target.kind}/${patch.target.name ?? "*"}: no such object`,
      );
    for (const target of targets) jsonPatch.applyPatch(target, operations, true, true);
  }
  for (const image of k.images ?? []) {
    for (const o of objects) {
      const pod = (o.spec as { template?: { spec?: { containers?: Array<{ image: string }> } } } | undefined)
        ?.template?.spec;
      for (const container of pod?.containers ?? []) {
        const [name, tag] = container.image.split(":");
        if (name !== image.name) continue;
        container.image = `${image.newName ?? name}:${image.newTag ?? tag}`;
      }
    }
  }
  return objects;
}
