/**
 * The HTTP face: POST /mutate and /validate take AdmissionReviews; /healthz,
 * /readyz and /metrics serve operators. The app only wraps and unwraps the
 * envelope; rules decide, handlers program OVN. `server.ts` listens.
 */
import type { ServerOptions } from "node:https";
import type { TLSSocket } from "node:tls";
import Fastify, {
  LogController,
  type FastifyPluginAsync,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import type { Logger } from "pino";
import type { Metrics } from "./metrics.js";
import { admit, type AdmitDeps } from "../webhooks/admit.js";
import { MalformedReviewError, parseReview, reviewResponseJson } from "../webhooks/envelope.js";
import type { Webhook } from "../webhooks/routes.js";

export interface Readiness {
  ready: boolean;
  /** What is not ready yet, in words. */
  waitingFor: string[];
}

export interface AppDeps extends AdmitDeps {
  log: Logger;
  metrics: Metrics;
  /** Largest request body, bytes (the API server sends objects up to 3 MiB, twice on UPDATE). */
  bodyLimit: number;
  readiness: () => Readiness;
  https?: ServerOptions;
  /**
   * Only callers with a client certificate that the HTTPS options' `ca`
   * verified may POST reviews (the API server, given a kubeconfig for
   * webhooks); others get 401. Probes and metrics stay open.
   */
  requireClientCertificate?: boolean;
  /** Idle keep-alive connections are kept this long (the API server reuses them). */
  keepAliveTimeoutMs: number;
}

export type ProbeDeps = Pick<AppDeps, "metrics" | "readiness">;

/** GET /healthz, /readyz and /metrics: on the HTTPS app, and on the plain metrics port when there is one. */
export const probes: FastifyPluginAsync<ProbeDeps> = async (app, deps) => {
  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_request, reply) => {
    const readiness = deps.readiness();
    return reply.code(readiness.ready ? 200 : 503).send({
      status: readiness.ready ? "ready" : "not ready",
      waitingFor: readiness.waitingFor,
    });
  });
  app.get("/metrics", async (_request, reply) => {
    return reply
      .header("content-type", deps.metrics.registry.contentType)
      .send(await deps.metrics.registry.metrics());
  });
};

/** Errors raised before a rule runs, each with a stable code and an HTTP status. */
const REQUEST_ERRORS: Record<string, { status: number; reason: string }> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, reason: "content-type" },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, reason: "content-length" },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, reason: "empty-body" },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, reason: "body-too-large" },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, reason: "not-json" },
  MALFORMED_ADMISSION_REVIEW: { status: 400, reason: "not-an-admission-review" },
};

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log,
    // One line per admission is logged below, with its uid; fastify's per-request lines would repeat it.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request (fastify would bind reqId to one for every request): our lines
    // carry reqId themselves, and a child per admission cost more than the admission's own line.
    childLoggerFactory: (logger: Logger) => logger,
    bodyLimit: deps.bodyLimit,
    keepAliveTimeout: deps.keepAliveTimeoutMs,
    // On close: refuse new requests with 503, finish the ones in flight, drop idle keep-alive connections.
    return503OnClosing: true,
    forceCloseConnections: "idle",
    ...(deps.https ? { https: deps.https } : {}),
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;

  // In the order of the architecture: the envelope and its routes, the operators' probes, then what is left.
  await app.register(admissionReviews, deps);
  await app.register(probes, deps);
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({
      error: `no route ${request.method} ${request.url}: POST /mutate or /validate, GET /healthz, /readyz or /metrics`,
      code: "NOT_FOUND",
      statusCode: 404,
    });
  });

  return app;
}

/**
 * POST /mutate and /validate: the AdmissionReview envelope, read as JSON
 * only, with its own error answers; the rules decide (webhooks/admit.ts).
 * Encapsulated: its content-type parser and error handler are its own.
 */
const admissionReviews: FastifyPluginAsync<
  AdmitDeps & Pick<AppDeps, "log" | "metrics" | "requireClientCertificate">
> = async (app, deps) => {
  // AdmissionReviews are JSON: every other content type is refused with 415. A __proto__ key is an
  // error; "constructor" keys are let through, as fastify's default does (no code here merges a
  // review into an object, and scanning every body for them cost a sixth of an admission's time).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    "application/json",
    { parseAs: "string" },
    app.getDefaultJsonParser("error", "ignore"),
  );

  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const code = error instanceof MalformedReviewError ? error.code : (error.code ?? "INTERNAL");
    const known = REQUEST_ERRORS[code];
    const status = known?.status ?? (error.statusCode && error.statusCode < 500 ? error.statusCode : 500);
    deps.metrics.malformed.inc({ reason: known?.reason ?? (status < 500 ? "other" : "internal") });
    const line = {
      reqId: request.id,
      event: "request-refused",
      method: request.method,
      url: request.url,
      status,
      code,
      error: error.message,
    };
    if (status >= 500) request.log.error(line, "request failed");
    else request.log.warn(line, "request refused");
    const message =
      code === "FST_ERR_CTP_INVALID_MEDIA_TYPE"
        ? `content-type: expected application/json, found ${JSON.stringify(request.headers["content-type"] ?? "none")}`
        : error.message;
    void reply.code(status).send({ error: message, code, statusCode: status });
  });

  const review = (webhook: Webhook) => async (request: FastifyRequest, reply: FastifyReply) => {
    const startedAt = performance.now();
    const parsed = parseReview(request.body);
    const r = parsed.request;
    const decided = admit(webhook, parsed, deps, startedAt);
    const carriedOut = decided instanceof Promise;
    const admission = carriedOut ? await decided : decided;
    const seconds = (performance.now() - startedAt) / 1000;
    deps.metrics.admitted.record(webhook, r.operation, admission.outcome, admission.rule, seconds);
    // One line an admission that did something: denied, warned, failed, patched, or programmed OVN.
    // An admission let through untouched is counted in the metrics and logged at debug, so a pod
    // nothing applies to costs little more than its envelope (its info line cost more than its rule).
    const response = admission.response;
    const untouched =
      admission.outcome === "allowed" &&
      !carriedOut &&
      response.patch === undefined &&
      response.warnings === undefined;
    const level = admission.outcome === "failed" ? "warn" : untouched ? "debug" : "info";
    if (deps.log.isLevelEnabled(level)) {
      deps.log[level](
        {
          reqId: request.id,
          uid: r.uid,
          webhook,
          kind: r.kind.kind,
          operation: r.operation,
          namespace: r.namespace || undefined,
          name: r.name || r.object?.metadata?.name || r.object?.metadata?.generateName || undefined,
          event: "admission",
          verdict: admission.outcome,
          rule: admission.rule,
          policy: admission.policy,
          dryRun: r.dryRun || undefined,
          patched: response.patch !== undefined || undefined,
          warnings: response.warnings?.length,
          message: response.status?.message,
          failure: admission.failure,
          durationMs: Math.round(seconds * 1e4) / 10,
        },
        admission.outcome === "failed" ? "admission answered by failure mode" : "admission",
      );
    }
    // Already JSON: fastify sends a string as it is.
    return reply
      .type("application/json; charset=utf-8")
      .send(reviewResponseJson(parsed.apiVersion, response));
  };

  // Before the body is read: an unauthenticated caller costs no parsing.
  const authenticated = async (request: FastifyRequest, reply: FastifyReply) => {
    const socket = request.raw.socket as TLSSocket;
    if (socket.authorized) return;
    const why = socket.authorizationError
      ? `its certificate was not accepted: ${String(socket.authorizationError)}`
      : "it presented no client certificate";
    deps.metrics.malformed.inc({ reason: "unauthenticated" });
    request.log.warn(
      { reqId: request.id, event: "request-unauthenticated", url: request.url, remote: request.ip, why },
      "admission request refused: not from an authenticated API server",
    );
    return reply.code(401).send({
      error: `client certificate required (--client-ca-file): ${why}`,
      code: "UNAUTHENTICATED",
      statusCode: 401,
    });
  };
  const guarded = deps.requireClientCertificate ? { onRequest: authenticated } : {};
  app.post("/mutate", guarded, review("mutate"));
  app.post("/validate", guarded, review("validate"));
};
