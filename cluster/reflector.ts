/**
 * List then watch one resource, keeping the view right: paginated list,
 * watch from the list's resourceVersion with bookmarks, resume from the last
 * resourceVersion seen, relist on 410 Gone, and re-watch with backoff after
 * any watch error. Built on @kubernetes/client-node's Watch and auth; its
 * ListWatch keeps whole objects, lists in one request, asks for no bookmarks
 * and stops on a watch error, none of which suits 100,000 pods.
 */
import https from "node:https";
import { Watch, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { apiStatusOf } from "./api-status.js";
import type { KubeObject } from "../domain/kube.js";
import { trim, type FactsByKind } from "../domain/facts.js";
import type { Kind } from "../domain/kinds.js";

export interface ReflectorTarget {
  replaceTrimmed<K extends Kind>(kind: K, facts: Array<FactsByKind[K]>): void;
  apply(kind: Kind, event: "ADDED" | "MODIFIED" | "DELETED", object: KubeObject): void;
}

export interface ResourceSource {
  kind: Kind;
  /** API path of the collection, e.g. /api/v1/pods or /apis/kubeovn.io/v1/subnets. */
  path: string;
  fieldSelector?: string;
}

export class ListError extends Error {
  override name = "ListError";
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

interface ListPage {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: KubeObject[];
}

const PAGE = 500;

export class Reflector {
  private resourceVersion = "";
  private stopped = false;
  private abort: AbortController | undefined;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly watch: Watch;
  /** Lists made (the first and every relist), for tests and logs. */
  lists = 0;

  constructor(
    private readonly kubeConfig: KubeConfig,
    readonly source: ResourceSource,
    private readonly target: ReflectorTarget,
    private readonly log: Logger,
  ) {
    this.watch = new Watch(kubeConfig);
  }

  /** Lists, starts watching, and resolves once the first list is in the view. */
  async start(): Promise<void> {
    await this.list();
    void this.startWatch();
  }

  /**
   * Starts from a resourceVersion an earlier run saw, without listing first;
   * the view is listed only if that version is too old (410 Gone).
   */
  resumeFrom(resourceVersion: string): void {
    this.resourceVersion = resourceVersion;
    void this.startWatch();
  }

  /** The last resourceVersion seen. */
  get version(): string {
    return this.resourceVersion;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.abort?.abort();
  }

  private async list(): Promise<void> {
    // Trimmed page by page: 100,000 whole pods would never fit beside the view.
    const facts: Array<FactsByKind[Kind]> = [];
    const trimOne = trim[this.source.kind] as (o: KubeObject) => FactsByKind[Kind];
    let next: string | undefined;
    let resourceVersion = "";
    do {
      const query = new URLSearchParams({ limit: String(PAGE) });
      if (next) query.set("continue", next);
      if (this.source.fieldSelector) query.set("fieldSelector", this.source.fieldSelector);
      const page = await this.get(`${this.source.path}?${query}`);
      for (const item of page.items ?? []) facts.push(trimOne(item));
      next = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion ?? "";
    } while (next);
    this.target.replaceTrimmed(this.source.kind, facts);
    this.resourceVersion = resourceVersion;
    this.lists++;
    this.log.debug(
      { event: "listed", kind: this.source.kind, objects: facts.length, resourceVersion },
      "listed",
    );
  }

  private async get(pathAndQuery: string): Promise<ListPage> {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new ListError("the kubeconfig has no current cluster", 0);
    const url = new URL(pathAndQuery, cluster.server);
    const options: https.RequestOptions = { method: "GET", headers: { accept: "application/json" } };
    await this.kubeConfig.applyToHTTPSOptions(options);
    return new Promise((resolve, reject) => {
      const request = https.request(url, options, (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (c: Buffer) => chunks.push(c));
        response.on("end", () => {
          const body = Buffer.concat(chunks).toString();
          if (response.statusCode !== 200) {
            reject(
              new ListError(
                `list ${this.source.path}: HTTP ${response.statusCode}: ${body.slice(0, 300)}`,
                response.statusCode ?? 0,
              ),
            );
            return;
          }
          try {
            resolve(JSON.parse(body) as ListPage);
          } catch (err) {
            reject(new ListError(`list ${this.source.path}: not JSON: ${(err as Error).message}`, 200));
          }
        });
      });
      request.setTimeout(60_000, () =>
        request.destroy(new ListError(`list ${this.source.path}: no answer in 60 s`, 0)),
      );
      request.on("error", reject);
      request.end();
    });
  }

  private async startWatch(): Promise<void> {
    if (this.stopped) return;
    const query: Record<string, string | number | boolean> = {
      allowWatchBookmarks: true,
      resourceVersion: this.resourceVersion,
      // Spread reconnects of many replicas, as client-go does.
      timeoutSeconds: 300 + Math.floor(Math.random() * 300),
    };
    if (this.source.fieldSelector) query.fieldSelector = this.source.fieldSelector;
    let gone = false;
    try {
      this.abort = await this.watch.watch(
        this.source.path,
        query,
        (phase: string, object: KubeObject & { code?: number }) => {
          switch (phase) {
            case "ADDED":
            case "MODIFIED":
            case "DELETED":
              this.target.apply(this.source.kind, phase, object);
              break;
            case "ERROR":
              if (object.code === 410) gone = true;
              this.log.info(
                { event: "watch-error-event", kind: this.source.kind, code: object.code },
                "watch reported an error",
              );
              return;
            case "BOOKMARK":
              break;
          }
          this.failures = 0;
          this.resourceVersion = object.metadata?.resourceVersion ?? this.resourceVersion;
        },
        (err: unknown) => void this.watchEnded(err, gone),
      );
    } catch (err) {
      void this.watchEnded(err, false);
    }
  }

  private async watchEnded(err: unknown, gone: boolean): Promise<void> {
    if (this.stopped) return;
    const status = apiStatusOf(err);
    if (gone || status === 410) {
      this.log.info(
        { event: "relist", kind: this.source.kind, reason: "410 Gone" },
        "resourceVersion too old: listing again",
      );
      this.resourceVersion = "";
    }
    if (!err && !gone) {
      void this.startWatch(); // a watch that timed out normally: resume from the last resourceVersion
      return;
    }
    this.failures++;
    const delay = Math.min(10_000, 200 * 2 ** Math.min(this.failures, 6)) * (0.5 + Math.random() / 2);
    if (err) {
      this.log.warn(
        {
          event: "watch-lost",
          kind: this.source.kind,
          error: (err as Error).message ?? String(err),
          retryMs: Math.round(delay),
        },
        "watch lost; resuming",
      );
    }
    this.retryTimer = setTimeout(() => void this.resume(), delay);
  }

  private async resume(): Promise<void> {
    if (this.stopped) return;
    try {
      if (!this.resourceVersion) await this.list();
      await this.startWatch();
    } catch (err) {
      await this.watchEnded(err, false);
    }
  }
}
