/**
 * Intents: what OVN or OVS must become once an object is admitted. A rule
 * decides them; an IntentRunner (ovn/intent-runner.ts) carries them out.
 */

/**
 * What OVN or OVS must become once the object is admitted; ovn/ carries
 * intents out as OVSDB transactions (never on dryRun).
 */
export interface Intent {
  /** Handler that carries it out, e.g. "nat" or "encap-ip". */
  kind: string;
  /** The object it serves, "namespace/name" or a node name. */
  owner: string;
  /** What the handler needs, in its own words. */
  spec: Record<string, unknown>;
  /**
   * When it cannot be carried out in time, admit anyway with a warning: its
   * handler keeps retrying (a node's Open_vSwitch database that is down).
   */
  optional?: boolean;
  /** Run on dryRun too, writing nothing, so the answer shows what would be given (an address). */
  preview?: boolean;
}

/** What carrying an intent out adds to the admission. */
export interface IntentResult {
  /** What it had to leave out, for the user. */
  warnings?: string[];
  /** Annotations the object gets (mutating webhooks only): what was allocated. */
  annotations?: Record<string, string>;
}

/**
 * The database refused the intent for a reason the user can fix (an address
 * another pod already holds): the admission is denied with this message,
 * whatever the failure mode, since retrying cannot help.
 */
export class IntentRefused extends Error {
  override name = "IntentRefused";
}

/** Carries an admission's intents out within its deadline (the OVN side implements it). */
export interface IntentRunner {
  /**
   * Carries the intents out in order within `remainingMs`. Throws the first
   * failure of a required intent; returns a warning for each optional one
   * that could not be carried out in time, and the annotations they gave.
   * On dryRun only `preview` intents run, and write nothing.
   */
  carryOut(
    intents: readonly Intent[],
    remainingMs: number,
    deadlineMs: number,
    dryRun?: boolean,
  ): Promise<Required<IntentResult>>;
}
