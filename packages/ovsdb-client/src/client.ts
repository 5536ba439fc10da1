/**
 * The client: one connection at a time to one of the remotes, RAFT-aware
 * (prefers the leader, follows leadership changes: connection.ts),
 * reconnecting with backoff and jitter, re-establishing monitors so caches
 * resync (monitor.ts); transactions and claims (transact.ts) on the live
 * connection.
 */
import { EventEmitter } from "node:events";
import { ConnectionClosedError, OvsdbError } from "./errors.js";
import { DatabaseCache, type CacheSpec } from "./cache.js";
import { backoffDelay, serverRole, watchRole, type ServerRole } from "./connection.js";
import { Monitors, type MonitorListener, type MonitorTableRequest } from "./monitor.js";
import { checkResults, encodeOperation } from "./operations.js";
import type { Operation, OperationResult } from "./protocol.js";
import { openSocket, parseRemotes, RemoteSyntaxError, type Remote, type SslFiles } from "./remote.js";
import { parseSchema, type DatabaseSchema } from "./schema.js";
import { claimFailure, claimOperations, type Claim } from "./transact.js";
import { RpcConnection, type RequestOptions } from "./wire/jsonrpc.js";

export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "closed";

export interface ClientOptions {
  /** One remote or a comma-separated list (a RAFT cluster), in OVS syntax. */
  remote: string;
  /** The database this client mainly serves: its RAFT leader is preferred, and its role watched. */
  database?: string;
  /** Key, certificate and CA files for ssl: remotes. */
  ssl?: SslFiles;
  /** Default time limit of a request, ms (default 10000). */
  requestTimeoutMs?: number;
  /** Time limit of one connection attempt, ms (default 5000). */
  connectTimeoutMs?: number;
  /** Inactivity probe interval, ms; 0 disables (default 5000). */
  probeIntervalMs?: number;
  /** Only settle on the RAFT leader of `database` when a cluster has one (default true). */
  leaderOnly?: boolean;
  /** Reconnect backoff: first delay and cap, ms (defaults 100 and 8000). */
  backoff?: { minMs?: number; maxMs?: number };
  /** Keep reconnecting after the connection is lost (default true). */
  reconnect?: boolean;
  /** Largest single message accepted, bytes. */
  maxMessageBytes?: number;
}

export interface ClientEvents {
  state: [state: ConnectionState, detail: { remote?: string; error?: Error }];
  connected: [remote: string];
  disconnected: [error: Error];
  /** Every transact call once it settles: for latency metrics. */
  transaction: [detail: { database: string; seconds: number; ok: boolean; operations: number }];
}

export class OvsdbClient extends EventEmitter<ClientEvents> {
  readonly remotes: Remote[];
  private readonly options: Required<
    Omit<ClientOptions, "ssl" | "database" | "backoff" | "maxMessageBytes">
  > &
    Pick<ClientOptions, "ssl" | "database" | "maxMessageBytes"> & {
      backoff: { minMs: number; maxMs: number };
    };
  private connection: RpcConnection | undefined;
  private currentState: ConnectionState = "idle";
  private nextRemote = 0;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly schemas = new Map<string, Promise<DatabaseSchema>>();
  private readonly monitors = new Monitors();
  private connecting: Promise<void> | undefined;
  /** A pass over the remotes is running: never two, or two connections would both feed the monitors. */
  private trying = false;

  constructor(options: ClientOptions) {
    super();
    this.remotes = parseRemotes(options.remote);
    const sslRemote = this.remotes.find((r) => r.kind === "ssl");
    if (sslRemote && !options.ssl) {
      throw new RemoteSyntaxError(
        `remote ${sslRemote.text} needs ssl files (privateKey, certificate, caCertificate in options.ssl)`,
      );
    }
    this.options = {
      remote: options.remote,
      database: options.database,
      ssl: options.ssl,
      maxMessageBytes: options.maxMessageBytes,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      probeIntervalMs: options.probeIntervalMs ?? 5_000,
      leaderOnly: options.leaderOnly ?? true,
      reconnect: options.reconnect ?? true,
      backoff: { minMs: options.backoff?.minMs ?? 100, maxMs: options.backoff?.maxMs ?? 8_000 },
    };
    // Spread clients of one cluster over its members.
    this.nextRemote = this.remotes.length > 1 ? Math.floor(Math.random() * this.remotes.length) : 0;
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** The remote of the live connection, if any. */
  get remote(): string | undefined {
    return this.connection && !this.connection.closed ? this.connection.remote : undefined;
  }

  /**
   * Connects (trying every remote, with backoff) and resolves once a
   * connection is up. With `timeoutMs`, rejects after that long; the client
   * keeps trying in the background until closed.
   */
  connect(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.currentState === "connected") return Promise.resolve();
    if (this.currentState === "closed") return Promise.reject(new OvsdbError("client is closed"));
    if (!this.connecting) {
      this.setState("connecting", {});
      this.connecting = new Promise<void>((resolve, reject) => {
        const onConnected = (): void => {
          this.off("state", onState);
          resolve();
        };
        const onState = (state: ConnectionState, detail: { error?: Error }): void => {
          if (state === "closed") {
            this.off("connected", onConnected);
            this.off("state", onState);
            reject(detail.error ?? new OvsdbError("client closed while connecting"));
          }
        };
        this.once("connected", onConnected);
        this.on("state", onState);
      }).finally(() => {
        this.connecting = undefined;
      });
      // A reconnect waiting out its backoff is brought forward, not doubled.
      if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
      void this.tryConnect();
    }
    const timeoutMs = options.timeoutMs;
    if (timeoutMs === undefined) return this.connecting;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new ConnectionClosedError(
              `could not connect to ${this.options.remote} within ${timeoutMs} ms (state ${this.currentState})`,
            ),
          ),
        timeoutMs,
      );
      (this.connecting as Promise<void>).then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err as Error);
        },
      );
    });
  }

  /** Closes the connection for good; pending requests fail. */
  close(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const connection = this.connection;
    this.connection = undefined;
    this.setState("closed", {});
    connection?.close();
  }

  /** Drops the current connection as if the peer died (for failover): the client reconnects. */
  dropConnection(reason = "dropped by caller"): void {
    this.connection?.destroy(reason);
  }

  private setState(state: ConnectionState, detail: { remote?: string; error?: Error }): void {
    if (this.currentState === "closed" && state !== "closed") return;
    this.currentState = state;
    this.emit("state", state, detail);
  }

  private scheduleReconnect(error: Error): void {
    if (this.currentState === "closed") return;
    if (!this.options.reconnect) {
      this.setState("closed", { error });
      return;
    }
    this.setState("reconnecting", { error });
    const delay = backoffDelay(this.attempt, this.options.backoff);
    this.attempt++;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.tryConnect();
    }, delay);
  }

  /** One pass over the remotes at a time; settles on the leader when there is one. */
  private async tryConnect(): Promise<void> {
    if (this.trying || (this.connection && !this.connection.closed)) return;
    this.trying = true;
    try {
      await this.connectOnce();
    } finally {
      this.trying = false;
    }
  }

  private async connectOnce(): Promise<void> {
    let lastError: Error = new ConnectionClosedError("no remote answered");
    let fallback: RpcConnection | undefined;
    for (let i = 0; i < this.remotes.length; i++) {
      if (this.currentState === "closed") break;
      const remote = this.remotes[this.nextRemote] as Remote;
      this.nextRemote = (this.nextRemote + 1) % this.remotes.length;
      let connection: RpcConnection;
      try {
        connection = await RpcConnection.open(
          openSocket(remote, this.options.ssl),
          remote.text,
          {
            requestTimeoutMs: this.options.requestTimeoutMs,
            probeIntervalMs: this.options.probeIntervalMs,
            ...(this.options.maxMessageBytes ? { maxMessageBytes: this.options.maxMessageBytes } : {}),
          },
          this.options.connectTimeoutMs,
        );
      } catch (err) {
        lastError = err as Error;
        continue;
      }
      try {
        const role = this.options.database ? await serverRole(connection, this.options.database) : undefined;
        if (role && role.model === "clustered" && !role.connected) {
          lastError = new ConnectionClosedError(
            `${this.options.database} is not connected to its cluster`,
            remote.text,
          );
          connection.close();
          continue;
        }
        if (
          role &&
          role.model === "clustered" &&
          !role.leader &&
          this.options.leaderOnly &&
          this.remotes.length > 1
        ) {
          // A follower is kept only as a fallback, if no member is leader now (an election is under way).
          if (fallback) connection.close();
          else fallback = connection;
          lastError = new ConnectionClosedError("not the cluster leader", remote.text);
          continue;
        }
        fallback?.close();
        await this.adopt(connection, role);
        return;
      } catch (err) {
        lastError = err as Error;
        connection.close();
      }
    }
    if (fallback && !fallback.closed && this.attempt >= 2) {
      try {
        await this.adopt(fallback, undefined);
        return;
      } catch (err) {
        lastError = err as Error;
      }
    }
    fallback?.close();
    this.scheduleReconnect(lastError);
  }

  private async adopt(connection: RpcConnection, role: ServerRole | undefined): Promise<void> {
    this.schemas.clear();
    this.connection = connection;
    connection.onClose((error) => {
      if (this.connection !== connection) return;
      this.connection = undefined;
      this.emit("disconnected", error);
      this.attempt = 0;
      this.scheduleReconnect(error);
    });
    if (role?.model === "clustered" && this.remotes.length > 1)
      watchRole(connection, this.options.database as string, this.options.leaderOnly);
    for (const monitor of this.monitors.all())
      await this.monitors.start(connection, await this.getSchemaOn(connection, monitor.database), monitor);
    this.attempt = 0;
    this.setState("connected", { remote: connection.remote });
    this.emit("connected", connection.remote);
  }

  private live(): RpcConnection {
    const connection = this.connection;
    if (!connection || connection.closed) {
      throw new ConnectionClosedError(`not connected (state ${this.currentState})`);
    }
    return connection;
  }

  /** Sends a raw JSON-RPC request on the live connection. */
  async request(method: string, params: unknown[], options?: RequestOptions): Promise<unknown> {
    return this.live().request(method, params, options);
  }

  async listDbs(): Promise<string[]> {
    return (await this.request("list_dbs", [])) as string[];
  }

  /** The schema of a database, fetched once per connection. */
  getSchema(database: string): Promise<DatabaseSchema> {
    let schema = this.schemas.get(database);
    if (!schema) {
      schema = this.request("get_schema", [database]).then(parseSchema);
      schema.catch(() => this.schemas.delete(database));
      this.schemas.set(database, schema);
    }
    return schema;
  }

  /** Round-trips an echo; resolves with what the server echoed. */
  async echo(...params: unknown[]): Promise<unknown[]> {
    return (await this.request("echo", params)) as unknown[];
  }

  /**
   * Runs operations as one transaction. Values are checked and encoded with
   * the schema before anything is sent; a failed operation raises its typed
   * error (see errors.ts) with its index.
   */
  async transact(
    database: string,
    operations: Operation[],
    options?: RequestOptions,
  ): Promise<OperationResult[]> {
    const schema = await this.getSchema(database);
    const encoded = operations.map((o) => encodeOperation(schema, o));
    const started = performance.now();
    let ok = false;
    try {
      const results = await this.request("transact", [database, ...encoded], options);
      const checked = checkResults(schema, operations, results);
      ok = true;
      return checked;
    } finally {
      const seconds = (performance.now() - started) / 1000;
      this.emit("transaction", { database, seconds, ok, operations: operations.length });
    }
  }

  /**
   * Runs `operations` only if no row holds any of the claimed values, in the
   * same transaction: two racing callers cannot both win. A lost claim raises
   * AlreadyTakenError naming the table and values.
   */
  async claim(
    database: string,
    claims: Claim[],
    operations: Operation[],
    options?: RequestOptions,
  ): Promise<OperationResult[]> {
    try {
      const results = await this.transact(database, claimOperations(claims, operations), options);
      return results.slice(claims.length);
    } catch (err) {
      throw claimFailure(err, claims);
    }
  }

  /**
   * Monitors tables of a database with monitor_cond_since (monitor_cond on
   * older servers). The listener gets a snapshot first, updates after, and a
   * new snapshot after a reconnect unless the server could send just the
   * changes it missed.
   */
  async monitor(
    database: string,
    tables: Record<string, MonitorTableRequest>,
    listener: MonitorListener,
  ): Promise<{ id: string; cancel(): Promise<void> }> {
    const monitor = this.monitors.add(database, tables, listener);
    try {
      const connection = this.live();
      await this.monitors.start(connection, await this.getSchemaOn(connection, database), monitor);
    } catch (err) {
      this.monitors.delete(monitor.id);
      throw err;
    }
    return {
      id: monitor.id,
      cancel: async () => {
        this.monitors.delete(monitor.id);
        if (this.connection && !this.connection.closed) await this.request("monitor_cancel", [monitor.id]);
      },
    };
  }

  /** A cache of the chosen tables, synced before it is returned. */
  async cache(database: string, spec: CacheSpec): Promise<DatabaseCache> {
    const schema = await this.getSchema(database);
    const cache = new DatabaseCache(schema, spec);
    const tables: Record<string, MonitorTableRequest> = {};
    for (const [name, tableSpec] of Object.entries(spec)) {
      tables[name] = tableSpec.columns ? { columns: tableSpec.columns } : {};
    }
    await this.monitor(database, tables, {
      snapshot: (u) => cache.applySnapshot(u),
      update: (u) => cache.applyUpdate(u),
    });
    return cache;
  }

  private getSchemaOn(connection: RpcConnection, database: string): Promise<DatabaseSchema> {
    if (connection === this.connection) return this.getSchema(database);
    return connection.request("get_schema", [database]).then(parseSchema);
  }
}
