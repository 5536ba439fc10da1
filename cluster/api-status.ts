/** The HTTP status of a failed Kubernetes API call: client-node's ApiException has `code`, a failed watch `statusCode`. */
export function apiStatusOf(err: unknown): number | undefined {
  const { code, statusCode } = (err ?? {}) as { code?: unknown; statusCode?: unknown };
  if (typeof statusCode === "number") return statusCode;
  return typeof code === "number" ? code : undefined;
}
