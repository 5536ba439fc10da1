/**
 * JSON-RPC 1.0 over one socket (RFC 7047 §4): requests with ids, replies
 * paired by id, notifications, the server's `echo` answered, and an
 * inactivity probe that drops a peer that stopped answering.
 */
import type net from "node:net";
import { CanceledError, ConnectionClosedError, RequestTimeoutError, RpcError } from "../errors.js";
import { JsonStreamDecoder } from "./framing.js";

export interface RpcOptions {
  /** Default time limit of a request, in ms. */
  requestTimeoutMs: number;
  /** Send an echo after this long without receiving anything, and drop the peer if nothing comes back within the same time again. 0 disables. */
  probeIntervalMs: number;
  /** Largest single message accepted, in bytes. */
  maxMessageBytes?: number;
}

export interface RequestOptions {
  timeoutMs?: number;
  /** Aborting sends RFC 7047 `cancel` for the request. */
  signal?: AbortSignal;
}

interface Pending {
  method: string;
  resolve(result: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
  signal: AbortSignal | undefined;
}

type NotificationHandler = (method: string, params: unknown[]) => void;

export class RpcConnection {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly decoder: JsonStreamDecoder;
  private idleTimer: NodeJS.Timeout | undefined;
  private deadTimer: NodeJS.Timeout | undefined;
  private closedError: Error | undefined;
  private readonly closeListeners: Array<(error: Error) => void> = [];
  private readonly notificationListeners: NotificationHandler[] = [];

  constructor(
    private readonly socket: net.Socket,
    readonly remote: string,
    private readonly options: RpcOptions,
  ) {
    this.decoder = new JsonStreamDecoder(options.maxMessageBytes);
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    socket.on("error", (err) =>
      this.shutdown(new ConnectionClosedError(`connection error: ${err.message}`, remote)),
    );
    socket.on("close", () => this.shutdown(new ConnectionClosedError("connection closed", remote)));
  }

  /** Resolves once the socket (and TLS, for ssl:) is up. */
  static open(
    socket: net.Socket,
    remote: string,
    options: RpcOptions,
    timeoutMs: number,
  ): Promise<RpcConnection> {
    return new Promise((resolve, reject) => {
      const event = "encrypted" in socket ? "secureConnect" : "connect";
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ConnectionClosedError(`could not connect within ${timeoutMs} ms`, remote));
      }, timeoutMs);
      const onError = (err: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(new ConnectionClosedError(`could not connect: ${err.message}`, remote));
      };
      socket.once("error", onError);
      socket.once(event, () => {
        clearTimeout(timer);
        socket.off("error", onError);
        const connection = new RpcConnection(socket, remote, options);
        connection.startProbe();
        resolve(connection);
      });
    });
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  onClose(listener: (error: Error) => void): void {
    if (this.closedError) listener(this.closedError);
    else this.closeListeners.push(listener);
  }

  onNotification(listener: NotificationHandler): void {
    this.notificationListeners.push(listener);
  }

  request(method: string, params: unknown[], options: RequestOptions = {}): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      const entry: Pending = {
        method,
        resolve,
        reject,
        timer: undefined,
        onAbort: undefined,
        signal: options.signal,
      };
      if (timeoutMs > 0) {
        entry.timer = setTimeout(() => {
          this.settle(id);
          this.sendCancel(id);
          reject(new RequestTimeoutError(method, timeoutMs, this.remote));
        }, timeoutMs);
      }
      if (options.signal) {
        if (options.signal.aborted) {
          reject(new CanceledError(method, this.remote));
          return;
        }
        // ovsdb-server (3.1) drops a canceled transaction without committing it
        // but sends no "canceled" reply, so the request is settled here.
        entry.onAbort = () => {
          this.settle(id);
          this.sendCancel(id);
          reject(new CanceledError(method, this.remote));
        };
        options.signal.addEventListener("abort", entry.onAbort, { once: true });
      }
      this.pending.set(id, entry);
      this.write({ method, params, id });
    });
  }

  /** Sends a notification (a request with a null id, no reply expected). */
  notify(method: string, params: unknown[]): void {
    if (!this.closedError) this.write({ method, params, id: null });
  }

  close(): void {
    this.shutdown(new ConnectionClosedError("connection closed by client", this.remote));
    this.socket.end();
    this.socket.destroySoon();
  }

  /** Drops the connection at once, as if the peer had gone away. */
  destroy(reason: string): void {
    this.shutdown(new ConnectionClosedError(reason, this.remote));
    this.socket.destroy();
  }

  get inFlight(): number {
    return this.pending.size;
  }

  private sendCancel(id: number): void {
    this.notify("cancel", [id]);
  }

  private write(message: unknown): void {
    this.socket.write(JSON.stringify(message));
  }

  private settle(id: number): Pending | undefined {
    const entry = this.pending.get(id);
    if (!entry) return undefined;
    this.pending.delete(id);
    if (entry.timer) clearTimeout(entry.timer);
    if (entry.onAbort) entry.signal?.removeEventListener("abort", entry.onAbort);
    return entry;
  }

  private receive(chunk: Buffer): void {
    this.heardFromPeer();
    let messages: unknown[];
    try {
      messages = this.decoder.push(chunk);
    } catch (err) {
      this.destroy(`protocol error: ${(err as Error).message}`);
      return;
    }
    for (const message of messages) this.dispatch(message as Record<string, unknown>);
  }

  private dispatch(message: Record<string, unknown>): void {
    if (typeof message.method === "string") {
      const params = Array.isArray(message.params) ? message.params : [];
      if (message.method === "echo" && message.id !== null && message.id !== undefined) {
        this.write({ result: params, error: null, id: message.id });
        return;
      }
      if (message.id === null || message.id === undefined) {
        for (const listener of this.notificationListeners) listener(message.method, params);
        return;
      }
      // A request we do not serve: RFC 7047 servers only send echo; answer so the peer is not left waiting.
      this.write({ result: null, error: "unknown method", id: message.id });
      return;
    }
    if (typeof message.id !== "number") return;
    const entry = this.settle(message.id);
    if (!entry) return; // reply to a request that already timed out
    if (message.error !== null && message.error !== undefined)
      entry.reject(new RpcError(entry.method, message.error));
    else entry.resolve(message.result);
  }

  private startProbe(): void {
    const interval = this.options.probeIntervalMs;
    if (interval <= 0) return;
    this.idleTimer = setTimeout(() => this.probe(), interval);
    this.idleTimer.unref();
  }

  private heardFromPeer(): void {
    if (this.deadTimer) {
      clearTimeout(this.deadTimer);
      this.deadTimer = undefined;
    }
    this.idleTimer?.refresh();
  }

  private probe(): void {
    if (this.closedError) return;
    const interval = this.options.probeIntervalMs;
    this.deadTimer = setTimeout(
      () => this.destroy(`no reply to inactivity probe within ${interval} ms: peer is dead`),
      interval,
    );
    this.deadTimer.unref();
    this.request("echo", ["ovsdb-client-probe"], { timeoutMs: 0 }).then(
      () => this.idleTimer?.refresh(),
      () => undefined,
    );
  }

  private shutdown(error: Error): void {
    if (this.closedError) return;
    this.closedError = error;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.deadTimer) clearTimeout(this.deadTimer);
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(error);
    for (const listener of this.closeListeners.splice(0)) listener(error);
  }
}
