/**
 * JSON Patch (RFC 6902) from a mutated copy: the one place patches are made.
 * Rules clone the object, edit the clone, and return the difference; keys
 * with "/" or "~" (every annotation and label key) are escaped per RFC 6901
 * by the library, and a missing `metadata.annotations` becomes one `add`.
 */
import jsonPatch, { type Operation as JsonPatchOperation } from "fast-json-patch";

export type { JsonPatchOperation };

/** A deep copy to edit; the original stays as the API server sent it. */
export function editable<T>(object: T): T {
  return structuredClone(object);
}

/** The JSON Patch that turns `original` into `mutated`. */
export function buildPatch(original: unknown, mutated: unknown): JsonPatchOperation[] {
  return jsonPatch.compare(original as object, mutated as object);
}

/** Applies a patch to a copy of `document` (tests and dry checks); throws on a patch that does not apply. */
export function applyPatch<T>(document: T, patch: JsonPatchOperation[]): T {
  return jsonPatch.applyPatch(structuredClone(document), patch, true, false).newDocument;
}

/**
 * `patch` followed by what adds `annotations` to the object it produces:
 * what a handler's result (an allocated address) adds to a rule's patch.
 */
export function withAnnotations(
  original: unknown,
  patch: JsonPatchOperation[],
  annotations: Readonly<Record<string, string>>,
): JsonPatchOperation[] {
  if (Object.keys(annotations).length === 0) return patch;
  const patched = patch.length ? applyPatch(original, patch) : original;
  const edited = editable(patched) as { metadata?: { annotations?: Record<string, string> } };
  edited.metadata = { ...edited.metadata, annotations: { ...edited.metadata?.annotations, ...annotations } };
  return [...patch, ...buildPatch(patched, edited)];
}
