/**
 * Carries intents out. Each intent kind has one handler that turns it into
 * OVSDB transactions; the admission waits for them within its deadline.
 */
import type { Intent } from "../webhooks/verdict.js";

export type IntentHandler = (intent: Intent, signal: AbortSignal) => Promise<void>;

export class UnknownIntentError extends Error {
  override name = "UnknownIntentError";
}

export class IntentHandlers {
  private readonly handlers: ReadonlyMap<string, IntentHandler>;

  constructor(handlers: Record<string, IntentHandler> = {}) {
    this.handlers = new Map(Object.entries(handlers));
  }

  /** Runs every intent's handler in order; the first failure stops the rest and is thrown. */
  async carryOut(intents: readonly Intent[], signal: AbortSignal): Promise<void> {
    for (const intent of intents) {
      const handler = this.handlers.get(intent.kind);
      if (!handler) {
        throw new UnknownIntentError(
          `no handler for intent ${JSON.stringify(intent.kind)} (of ${intent.owner})`,
        );
      }
      signal.throwIfAborted();
      await handler(intent, signal);
    }
  }
}
