/**
 * Group commit for claims: claims that arrive while a transaction is in
 * flight go together into the next one, each with its own `wait`s. When that
 * transaction fails on one claim's `wait`, that claim alone is refused (with
 * what its wait means) and the others are sent again without it, so each
 * claim's outcome is what it would have been alone: of two claims of one
 * address in a batch, the first takes it and the second's wait sees it taken.
 * A claim that arrives when nothing is in flight is sent at once: no claim
 * waits for a timer.
 */
import {
  ConnectionClosedError,
  RequestTimeoutError,
  TimedOutError,
  type Operation,
  type TransactionError,
  type OvsdbClient,
} from "ovsdb-client";

/**
 * The claim shared a key (an address) with an earlier claim of the same
 * batch and was not sent: once that one committed or failed, the caller
 * looks again (its cache now shows the outcome) and submits again if the
 * address is still free.
 */
export class ClaimDeferred extends Error {
  override name = "ClaimDeferred";
}

export interface GroupMember {
  /** What the claim takes (addresses): two claims of one key never share a transaction. */
  keys?: readonly string[];
  /** The claim's `wait`s, then its writes; `name` makes its uuid-names unique in the batch. */
  build(name: string): { waits: Operation[]; writes: Operation[] };
  /** What the failure of the claim's wait at `index` (of its own waits) means. */
  explain(index: number): Promise<Error>;
}

/**
 * One claim alone, in its own transaction: what a batch of one does, for
 * writes that are not grouped (programming from a stored object).
 */
export async function transactGuarded(
  northbound: OvsdbClient,
  database: string,
  member: GroupMember,
): Promise<void> {
  const { waits, writes } = member.build("one");
  try {
    await northbound.transact(database, [...waits, ...writes]);
  } catch (err) {
    if (err instanceof TimedOutError && err.index < waits.length) throw await member.explain(err.index);
    throw err;
  }
}

interface Queued {
  member: GroupMember;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class GroupCommit {
  private readonly queue: Queued[] = [];
  private flushing = false;
  /** Largest batch: a transaction stays small enough to answer well within an admission deadline. */
  private readonly maxBatch: number;

  constructor(
    private readonly northbound: OvsdbClient,
    private readonly database: string,
    options: { maxBatch?: number } = {},
  ) {
    this.maxBatch = options.maxBatch ?? 64;
  }

  /** Resolves once the claim committed; rejects with its refusal, or the error that stopped it. */
  submit(member: GroupMember): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ member, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) await this.commit(this.queue.splice(0, this.maxBatch));
    } finally {
      this.flushing = false;
    }
  }

  private async commit(batch: Queued[]): Promise<void> {
    const taken = new Set<string>();
    const deferred: Queued[] = [];
    const members = batch.filter((queued) => {
      const keys = queued.member.keys ?? [];
      if (keys.some((k) => taken.has(k))) {
        deferred.push(queued);
        return false;
      }
      for (const k of keys) taken.add(k);
      return true;
    });
    try {
      await this.send(members);
    } finally {
      for (const queued of deferred)
        queued.reject(new ClaimDeferred("an earlier claim of the same address was in the same batch"));
    }
  }

  private async send(batch: Queued[]): Promise<void> {
    let members = batch;
    while (members.length > 0) {
      const operations: Operation[] = [];
      const spans = members.map((queued, i) => {
        const { waits, writes } = queued.member.build(`c${i}`);
        const start = operations.length;
        operations.push(...waits, ...writes);
        return { queued, start, waitsEnd: start + waits.length };
      });
      try {
        await this.northbound.transact(this.database, operations);
        for (const { queued } of spans) queued.resolve();
        return;
      } catch (err) {
        const failed =
          err instanceof TimedOutError
            ? spans.find((s) => err.index >= s.start && err.index < s.waitsEnd)
            : undefined;
        if (failed) {
          // Only the claim whose wait failed is refused; the rest go again without it.
          const index = (err as TransactionError).index - failed.start;
          failed.queued.reject(await failed.queued.member.explain(index).catch((e: Error) => e));
          members = members.filter((m) => m !== failed.queued);
          continue;
        }
        const lost = err instanceof ConnectionClosedError || err instanceof RequestTimeoutError;
        if (lost || members.length === 1) {
          // A lost reply may hide a commit: each claim's own retry reads what the database holds.
          for (const m of members) m.reject(err as Error);
          return;
        }
        // Any other failure (a constraint): each claim alone, so that it is only its own.
        for (const m of members) await this.send([m]);
        return;
      }
    }
  }
}
