/**
 * One admission from review to response: route, namespace policy, the rule,
 * then (never on dryRun) the intents, all within the deadline. A slow or
 * failed dependency is answered by the webhook's failure mode.
 */
import type { ClusterView } from "../domain/view.js";
import { IntentRefused, type IntentRunner } from "../domain/intents.js";
import { encodePatch, type AdmissionResponse, type AdmissionReview } from "./envelope.js";
import { applyPolicy, policyFor, type PolicyMode } from "./policy.js";
import { routeFor, type Route, type Webhook } from "./routes.js";
import type { RuleSettings } from "../domain/settings.js";
import { withAnnotations } from "./patch.js";
import { deny, type Verdict } from "./verdict.js";

/** What to answer when a dependency is slow or down: deny with a clear message, or allow with a warning. */
export type FailureMode = "deny" | "allow";

export interface AdmitDeps {
  routes: readonly Route[];
  view: ClusterView;
  settings: RuleSettings;
  handlers: IntentRunner;
  policyLabel: string;
  deadlineMs: number;
  failureModes: Record<Webhook, FailureMode>;
}

/** allowed, denied, warned (a denial let through by policy warn), failed (a dependency failed, answered by the failure mode). */
export type Outcome = "allowed" | "denied" | "warned" | "failed";

export interface Admission {
  response: AdmissionResponse;
  outcome: Outcome;
  /** The rule that answered, or "none". */
  rule: string;
  policy: PolicyMode;
  /** Set when the failure mode answered: what failed. */
  failure?: string;
  /** For a denial by the rule: each violation's message, the first one first (the response's message joins them). */
  violations?: string[];
}

function toResponse(uid: string, verdict: Verdict, webhook: Webhook): AdmissionResponse {
  const response: AdmissionResponse = { uid, allowed: verdict.allowed };
  if (!verdict.allowed) {
    const code = verdict.code ?? 403;
    response.status = {
      code,
      message: verdict.message ?? "denied",
      reason: code === 400 ? "BadRequest" : "Forbidden",
    };
  }
  // A validating webhook may not patch; the API server would reject the response.
  if (webhook === "mutate" && verdict.allowed && verdict.patch.length > 0) {
    response.patchType = "JSONPatch";
    response.patch = encodePatch(verdict.patch);
  }
  if (verdict.warnings.length > 0) response.warnings = verdict.warnings;
  return response;
}

/**
 * Answers at once (no promise) when there is nothing to carry out, which is
 * most admissions: an await per admission cost more than the rules.
 */
export function admit(
  webhook: Webhook,
  review: AdmissionReview,
  deps: AdmitDeps,
  startedAt = performance.now(),
): Admission | Promise<Admission> {
  const { request } = review;
  const route = routeFor(deps.routes, webhook, request);
  const policy = policyFor(request.namespace, deps.view, deps.policyLabel);
  if (!route || policy.mode === "off")
    return {
      response: { uid: request.uid, allowed: true },
      outcome: "allowed",
      rule: route?.name ?? "none",
      policy: policy.mode,
    };

  const decided = route.rule(request, deps.view, deps.settings);
  const verdict = applyPolicy(decided, policy);
  const outcome: Outcome = !verdict.allowed ? "denied" : decided.allowed ? "allowed" : "warned";

  const intents = request.dryRun ? verdict.intents.filter((i) => i.preview) : verdict.intents;
  const decision = { outcome, rule: route.name, policy: policy.mode };
  if (!verdict.allowed)
    return {
      response: toResponse(request.uid, verdict, webhook),
      ...decision,
      violations: verdict.violations?.map((v) => v.message) ?? [verdict.message ?? "denied"],
    };
  if (intents.length === 0) return { response: toResponse(request.uid, verdict, webhook), ...decision };
  return carryOut(webhook, request, verdict, intents, decision, deps, startedAt);
}

/** The intents of an allowed admission, within what is left of the deadline; refusals and failures answered. */
async function carryOut(
  webhook: Webhook,
  request: AdmissionReview["request"],
  verdict: Verdict,
  intents: Verdict["intents"],
  decision: Pick<Admission, "outcome" | "rule" | "policy">,
  deps: AdmitDeps,
  startedAt: number,
): Promise<Admission> {
  try {
    const remaining = deps.deadlineMs - (performance.now() - startedAt);
    const done = await deps.handlers.carryOut(intents, remaining, deps.deadlineMs, request.dryRun);
    const carried: Verdict = {
      ...verdict,
      warnings: done.warnings.length ? [...verdict.warnings, ...done.warnings] : verdict.warnings,
      // What was allocated reaches the object through the mutating webhook's patch.
      patch:
        webhook === "mutate"
          ? withAnnotations(request.object, verdict.patch, done.annotations)
          : verdict.patch,
    };
    return { response: toResponse(request.uid, carried, webhook), ...decision };
  } catch (err) {
    if (err instanceof IntentRefused) {
      // Under policy warn the object is admitted without what was refused, and told so.
      const refused =
        decision.policy === "warn"
          ? { ...verdict, intents: [], warnings: [...verdict.warnings, `not programmed: ${err.message}`] }
          : deny(err.message, verdict.warnings);
      return {
        ...decision,
        response: toResponse(request.uid, refused, webhook),
        outcome: refused.allowed ? "warned" : "denied",
      };
    }
    const failure = err instanceof Error ? err.message : String(err);
    const mode = deps.failureModes[webhook];
    const answered: Verdict =
      mode === "allow"
        ? {
            ...verdict,
            intents: [],
            warnings: [...verdict.warnings, `admitted, but OVN is not programmed for it yet: ${failure}`],
          }
        : {
            allowed: false,
            code: 403,
            message: `could not program OVN for this ${request.kind.kind} (failure mode deny): ${failure}`,
            patch: [],
            warnings: verdict.warnings,
            intents: [],
          };
    const response = toResponse(request.uid, answered, webhook);
    if (mode === "deny" && response.status) {
      response.status = { ...response.status, code: 503, reason: "ServiceUnavailable" };
    }
    return { ...decision, response, outcome: "failed", failure };
  }
}
