/**
 * The AdmissionReview envelope (admission.k8s.io/v1 and v1beta1): the one
 * place that reads a review off the wire and writes the answer back, in the
 * version it came in.
 */
import type { Operation as JsonPatchOperation } from "fast-json-patch";

export const ADMISSION_VERSIONS = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"] as const;
export type AdmissionVersion = (typeof ADMISSION_VERSIONS)[number];
export type AdmissionOperation = "CREATE" | "UPDATE" | "DELETE" | "CONNECT";
const OPERATIONS = new Set<string>(["CREATE", "UPDATE", "DELETE", "CONNECT"]);

import type { GroupVersionKind, GroupVersionResource, KubeObject } from "../domain/kube.js";

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  resource: GroupVersionResource;
  subResource: string;
  name: string;
  namespace: string;
  operation: AdmissionOperation;
  userInfo: { username?: string; groups?: string[] };
  object: KubeObject | null;
  oldObject: KubeObject | null;
  dryRun: boolean;
}

export interface AdmissionReview {
  apiVersion: AdmissionVersion;
  request: AdmissionRequest;
}

/** What the envelope sends back; built from a verdict by respond(). */
export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string };
  patchType?: "JSONPatch";
  patch?: string;
  warnings?: string[];
}

/** The request body is not an AdmissionReview we can answer (HTTP 400). */
export class MalformedReviewError extends Error {
  override name = "MalformedReviewError";
  readonly statusCode = 400;
  readonly code = "MALFORMED_ADMISSION_REVIEW";
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Every value a string (a loop, not Object.values: this runs on every review). */
function allStrings(map: Record<string, unknown>): boolean {
  for (const key in map) if (typeof map[key] !== "string") return false;
  return true;
}

function describe(x: unknown): string {
  if (x === undefined) return "nothing";
  if (x === null) return "null";
  if (Array.isArray(x)) return "an array";
  if (typeof x === "object") return "an object";
  const s = JSON.stringify(x);
  return `${typeof x} ${s.length > 60 ? `${s.slice(0, 57)}...` : s}`;
}

function field(
  obj: Record<string, unknown>,
  path: string,
  key: string,
  type: "string" | "object",
  optional = false,
): unknown {
  const v = obj[key];
  if (v === undefined && optional) return undefined;
  if (type === "string" ? typeof v !== "string" : !isObject(v)) {
    throw new MalformedReviewError(
      `${path}${key}: expected ${type === "string" ? "a string" : "an object"}, found ${describe(v)}`,
    );
  }
  return v;
}

function gvk(obj: Record<string, unknown>, path: string): GroupVersionKind {
  return {
    group: (field(obj, path, "group", "string", true) as string | undefined) ?? "",
    version: field(obj, path, "version", "string") as string,
    kind: field(obj, path, "kind", "string") as string,
  };
}

function gvr(obj: Record<string, unknown>, path: string): GroupVersionResource {
  return {
    group: (field(obj, path, "group", "string", true) as string | undefined) ?? "",
    version: field(obj, path, "version", "string") as string,
    resource: field(obj, path, "resource", "string") as string,
  };
}

function kubeObject(x: unknown, path: string, expectedKind: string): KubeObject | null {
  if (x === undefined || x === null) return null;
  if (!isObject(x))
    throw new MalformedReviewError(`${path}: expected an object or null, found ${describe(x)}`);
  if (x.metadata !== undefined && !isObject(x.metadata)) {
    throw new MalformedReviewError(`${path}.metadata: expected an object, found ${describe(x.metadata)}`);
  }
  // The API server fills kind for the object it sends; one that disagrees with request.kind is not what it claims.
  if (typeof x.kind === "string" && x.kind !== expectedKind) {
    throw new MalformedReviewError(
      `${path}.kind: expected ${JSON.stringify(expectedKind)} (request.kind), found ${JSON.stringify(x.kind)}`,
    );
  }
  for (const key of ["annotations", "labels"] as const) {
    const map = (x.metadata as Record<string, unknown> | undefined)?.[key];
    if (map === undefined || map === null) continue;
    if (!isObject(map) || !allStrings(map)) {
      throw new MalformedReviewError(
        `${path}.metadata.${key}: expected an object of strings, found ${describe(map)}`,
      );
    }
  }
  return x as KubeObject;
}

/** Checks a parsed body and returns the typed review, or throws MalformedReviewError naming the field. */
export function parseReview(body: unknown): AdmissionReview {
  if (!isObject(body))
    throw new MalformedReviewError(`body: expected an AdmissionReview object, found ${describe(body)}`);
  if (!ADMISSION_VERSIONS.includes(body.apiVersion as AdmissionVersion)) {
    throw new MalformedReviewError(
      `apiVersion: expected ${ADMISSION_VERSIONS.join(" or ")}, found ${describe(body.apiVersion)}`,
    );
  }
  if (body.kind !== "AdmissionReview") {
    throw new MalformedReviewError(`kind: expected "AdmissionReview", found ${describe(body.kind)}`);
  }
  const r = body.request;
  if (!isObject(r)) throw new MalformedReviewError(`request: expected an object, found ${describe(r)}`);
  const uid = field(r, "request.", "uid", "string") as string;
  if (uid.length === 0)
    throw new MalformedReviewError("request.uid: expected a non-empty string, found an empty one");
  const kind = gvk(field(r, "request.", "kind", "object") as Record<string, unknown>, "request.kind.");
  const resource = gvr(
    field(r, "request.", "resource", "object") as Record<string, unknown>,
    "request.resource.",
  );
  const operation = field(r, "request.", "operation", "string") as string;
  if (!OPERATIONS.has(operation)) {
    throw new MalformedReviewError(
      `request.operation: expected CREATE, UPDATE, DELETE or CONNECT, found ${describe(operation)}`,
    );
  }
  const userInfo = r.userInfo === undefined ? {} : field(r, "request.", "userInfo", "object");
  if (r.dryRun !== undefined && r.dryRun !== null && typeof r.dryRun !== "boolean") {
    throw new MalformedReviewError(`request.dryRun: expected a boolean, found ${describe(r.dryRun)}`);
  }
  return {
    apiVersion: body.apiVersion as AdmissionVersion,
    request: {
      uid,
      kind,
      resource,
      subResource: (field(r, "request.", "subResource", "string", true) as string | undefined) ?? "",
      name: (field(r, "request.", "name", "string", true) as string | undefined) ?? "",
      namespace: (field(r, "request.", "namespace", "string", true) as string | undefined) ?? "",
      operation: operation as AdmissionOperation,
      userInfo: userInfo as AdmissionRequest["userInfo"],
      object: kubeObject(r.object, "request.object", kind.kind),
      oldObject: kubeObject(r.oldObject, "request.oldObject", kind.kind),
      dryRun: r.dryRun === true,
    },
  };
}

/** The answer: an AdmissionReview of the version the request came in, as the JSON sent. */
export function reviewResponseJson(apiVersion: AdmissionVersion, response: AdmissionResponse): string {
  return `{"apiVersion":"${apiVersion}","kind":"AdmissionReview","response":${JSON.stringify(response)}}`;
}

/** Encodes a JSON Patch the way the API server wants it: base64 of its JSON. */
export function encodePatch(patch: JsonPatchOperation[]): string {
  return Buffer.from(JSON.stringify(patch)).toString("base64");
}
