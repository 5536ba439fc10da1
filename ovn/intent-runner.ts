/**
 * Carries intents out within the admission's deadline. Each intent kind has
 * one handler that turns it into OVSDB transactions. A required intent that
 * fails (or runs out of time) fails the admission, which then follows the
 * webhook's failure mode; an optional one becomes a warning, and its handler
 * keeps retrying in the background.
 */
import { type Intent, IntentRefused, type IntentResult, type IntentRunner } from "../domain/intents.js";

/**
 * Carries one intent out. On dryRun (only intents marked `preview` are run
 * then) it writes nothing and answers what it would have done.
 */
export type IntentHandler = (
  intent: Intent,
  signal: AbortSignal,
  mode: { dryRun: boolean },
) => Promise<void | string[] | IntentResult>;

export class UnknownIntentError extends Error {
  override name = "UnknownIntentError";
}

export class DeadlineExceeded extends Error {
  override name = "DeadlineExceeded";
}

/** Runs `work` for at most `ms`; the error names the configured deadline. */
async function withDeadline<T>(
  work: (signal: AbortSignal) => Promise<T>,
  ms: number,
  deadlineMs: number,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => {
        controller.abort();
        reject(new DeadlineExceeded(`no answer within the ${deadlineMs} ms admission deadline`));
      },
      Math.max(0, ms),
    );
  });
  try {
    return await Promise.race([work(controller.signal), expired]);
  } finally {
    clearTimeout(timer);
  }
}

export class IntentHandlers implements IntentRunner {
  private readonly handlers: ReadonlyMap<string, IntentHandler>;

  constructor(handlers: Record<string, IntentHandler> = {}) {
    this.handlers = new Map(Object.entries(handlers));
  }

  /**
   * Carries the intents out in order within `remainingMs`. Throws the first
   * failure of a required intent; returns a warning for each optional one
   * that could not be carried out in time, and the annotations they gave.
   * On dryRun only `preview` intents run, and write nothing.
   */
  async carryOut(
    intents: readonly Intent[],
    remainingMs: number,
    deadlineMs: number,
    dryRun = false,
  ): Promise<Required<IntentResult>> {
    const started = performance.now();
    const warnings: string[] = [];
    const annotations: Record<string, string> = {};
    for (const intent of intents) {
      if (dryRun && !intent.preview) continue;
      const handler = this.handlers.get(intent.kind);
      if (!handler)
        throw new UnknownIntentError(
          `no handler for intent ${JSON.stringify(intent.kind)} (of ${intent.owner})`,
        );
      const left = remainingMs - (performance.now() - started);
      try {
        const said = await withDeadline((signal) => handler(intent, signal, { dryRun }), left, deadlineMs);
        if (Array.isArray(said)) warnings.push(...said);
        else if (said) {
          warnings.push(...(said.warnings ?? []));
          Object.assign(annotations, said.annotations);
        }
      } catch (err) {
        if (!intent.optional || err instanceof IntentRefused) throw err;
        warnings.push(
          `${intent.kind} for ${intent.owner} is not applied yet (${(err as Error).message}); it is retried until it is`,
        );
      }
    }
    return { warnings, annotations };
  }
}
