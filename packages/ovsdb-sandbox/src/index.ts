/**
 * Real ovsdb-server processes in temporary directories: a standalone
 * database (OVN_Northbound, Open_vSwitch, or any schema), or a RAFT cluster
 * on loopback. Each server has its own directory, unix socket and ports, so
 * tests can run in parallel; every server is killed when the process exits,
 * even after a failing test.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, mkdirSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const SCHEMAS = {
  northbound: "/usr/share/ovn/ovn-nb.ovsschema",
  southbound: "/usr/share/ovn/ovn-sb.ovsschema",
  openvswitch: "/usr/share/openvswitch/vswitch.ovsschema",
} as const;

export class SandboxError extends Error {
  override name = "SandboxError";
}

/** Tells what is missing when the OVS/OVN tools are not installed. */
export function checkTools(): void {
  const missing: string[] = [];
  for (const file of [SCHEMAS.northbound, SCHEMAS.openvswitch]) if (!existsSync(file)) missing.push(file);
  for (const tool of ["/usr/sbin/ovsdb-server", "/usr/bin/ovsdb-tool"])
    if (!existsSync(tool)) missing.push(tool);
  if (missing.length > 0) {
    throw new SandboxError(
      `missing ${missing.join(", ")}: install Debian's openvswitch-switch, openvswitch-common and ovn-central (scripts/setup.sh does)`,
    );
  }
}

const live = new Set<ChildProcess>();
const scratchDirs = new Set<string>();
let exitHooked = false;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  const cleanup = (): void => {
    for (const child of live) child.kill("SIGKILL");
    for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", cleanup);
  // On a signal, clean up and die as the signal would, unless the host
  // process handles that signal itself (then it stops its servers, and the
  // exit hook catches whatever it left).
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const onSignal = (): void => {
      if (process.listenerCount(signal) > 1) return;
      process.off(signal, onSignal);
      cleanup();
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/** A scratch directory under the system temp dir (short, so unix socket paths fit in 108 bytes). */
export function scratchDir(prefix = "ovsdb-"): string {
  hookExit();
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  scratchDirs.add(dir);
  return dir;
}

/** A loopback TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection({ path: socketPath });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export interface SslConfig {
  privateKey: string;
  certificate: string;
  caCertificate: string;
}

export interface ServerOptions {
  /** Name of the files in the directory (default "db"). */
  name?: string;
  /** Also listen on TCP on loopback (default true). */
  tcp?: boolean;
  /** Fixed TCP port; chosen by the kernel when omitted. */
  tcpPort?: number;
  /** Also listen on SSL on loopback with these files. */
  ssl?: SslConfig;
  /** Extra ovsdb-server arguments. */
  args?: string[];
}

/** One ovsdb-server process over one database file. */
export class OvsdbServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  tcpPort: number | undefined;
  sslPort: number | undefined;

  constructor(
    readonly dir: string,
    readonly dbFile: string,
    private readonly options: ServerOptions,
  ) {
    this.tcpPort = options.tcpPort;
  }

  get name(): string {
    return this.options.name ?? "db";
  }
  get socketPath(): string {
    return path.join(this.dir, `${this.name}.sock`);
  }
  get controlPath(): string {
    return path.join(this.dir, `${this.name}.ctl`);
  }
  get logFile(): string {
    return path.join(this.dir, `${this.name}.log`);
  }
  get unixRemote(): string {
    return `unix:${this.socketPath}`;
  }
  get tcpRemote(): string {
    if (!this.tcpPort) throw new SandboxError(`${this.name} does not listen on TCP`);
    return `tcp:127.0.0.1:${this.tcpPort}`;
  }
  get sslRemote(): string {
    if (!this.sslPort) throw new SandboxError(`${this.name} does not listen on SSL`);
    return `ssl:127.0.0.1:${this.sslPort}`;
  }
  get pid(): number | undefined {
    return this.child?.pid;
  }
  get running(): boolean {
    return this.child !== undefined;
  }

  /** Starts the server (again, on the same file, socket and ports) and waits until it answers. */
  async start(): Promise<void> {
    if (this.child) return;
    checkTools();
    hookExit();
    const logOffset = existsSync(this.logFile) ? readFileSync(this.logFile).length : 0;
    const remotes = [`--remote=punix:${this.socketPath}`];
    if (this.options.tcp !== false) remotes.push(`--remote=ptcp:${this.tcpPort ?? 0}:127.0.0.1`);
    const sslArgs: string[] = [];
    if (this.options.ssl) {
      // A fixed port: the log would not tell an SSL port from a TCP one.
      this.sslPort ??= await freePort();
      remotes.push(`--remote=pssl:${this.sslPort}:127.0.0.1`);
      sslArgs.push(
        `--private-key=${this.options.ssl.privateKey}`,
        `--certificate=${this.options.ssl.certificate}`,
        `--ca-cert=${this.options.ssl.caCertificate}`,
      );
    }
    const child = spawn(
      "ovsdb-server",
      [
        this.dbFile,
        "-vconsole:off",
        "-vfile:info",
        `--log-file=${this.logFile}`,
        ...remotes,
        ...sslArgs,
        `--pidfile=${path.join(this.dir, `${this.name}.pid`)}`,
        `--unixctl=${this.controlPath}`,
        "--no-chdir",
        ...(this.options.args ?? []),
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    live.add(child);
    this.child = child;
    let exitedEarly: string | undefined;
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        live.delete(child);
        if (this.child === child) this.child = undefined;
        exitedEarly = `ovsdb-server exited (${signal ?? code}): ${stderr.trim() || "see " + this.logFile}`;
        resolve();
      });
    });

    const deadline = Date.now() + 10_000;
    for (;;) {
      if (exitedEarly) throw new SandboxError(exitedEarly);
      if (Date.now() > deadline) {
        await this.kill();
        throw new SandboxError(`ovsdb-server ${this.name} did not come up within 10 s; see ${this.logFile}`);
      }
      if (existsSync(this.socketPath) && (await canConnect(this.socketPath))) {
        if (this.readPorts(logOffset)) return;
      }
      await sleep(10);
    }
  }

  /** Learns the TCP port the kernel chose, from the log ("listening on port N"). */
  private readPorts(offset: number): boolean {
    if (this.options.tcp === false || this.tcpPort) return true;
    const log = readFileSync(this.logFile).subarray(offset).toString();
    const ports = [...log.matchAll(/listening on port (\d+)/g)]
      .map((m) => Number(m[1]))
      .filter((p) => p !== this.sslPort);
    if (ports.length === 0) return false;
    this.tcpPort = ports[0];
    return true;
  }

  /** Stops the server with SIGTERM and waits for it to exit. */
  async stop(): Promise<void> {
    if (!this.child) return;
    this.child.kill("SIGTERM");
    await this.exited;
  }

  /** Kills the server at once (SIGKILL), as a crash would. */
  async kill(): Promise<void> {
    if (!this.child) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }

  /** Stops answering (SIGSTOP) without closing sockets: a hung peer. */
  freeze(): void {
    this.child?.kill("SIGSTOP");
  }

  thaw(): void {
    this.child?.kill("SIGCONT");
  }

  /** Runs an ovs-appctl command against this server. */
  async appctl(...args: string[]): Promise<string> {
    const { stdout } = await run("ovs-appctl", ["-t", this.controlPath, ...args]);
    return stdout;
  }
}

/** Starts a standalone database with `schema` (a path, or a key of SCHEMAS). */
export async function startStandalone(
  schema: string,
  options: ServerOptions & { dir?: string } = {},
): Promise<OvsdbServer> {
  checkTools();
  const dir = options.dir ?? scratchDir();
  const name = options.name ?? "db";
  const schemaFile = schema in SCHEMAS ? SCHEMAS[schema as keyof typeof SCHEMAS] : schema;
  const dbFile = path.join(dir, `${name}.db`);
  // A database file kept in a caller's directory is reused: its content survives restarts.
  if (!options.dir || !existsSync(dbFile)) await run("ovsdb-tool", ["create", dbFile, schemaFile]);
  const server = new OvsdbServer(dir, dbFile, { ...options, name });
  await server.start();
  return server;
}

/** A standalone OVN_Northbound database. */
export function startNorthbound(options: ServerOptions & { dir?: string } = {}): Promise<OvsdbServer> {
  return startStandalone(SCHEMAS.northbound, { name: "nb", ...options });
}

/**
 * A node's Open_vSwitch database, initialised as `ovs-vsctl init` does (the
 * one Open_vSwitch row), with `external_ids` given (system-id, hostname...).
 */
export async function startOpenVswitch(
  options: ServerOptions & { dir?: string; externalIds?: Record<string, string> } = {},
): Promise<OvsdbServer> {
  const server = await startStandalone(SCHEMAS.openvswitch, { name: "conf", ...options });
  const args = [`--db=${server.unixRemote}`, "--no-wait", "init"];
  for (const [k, v] of Object.entries(options.externalIds ?? {})) {
    args.push("--", "set", "Open_vSwitch", ".", `external_ids:${k}=${JSON.stringify(v)}`);
  }
  await run("ovs-vsctl", args);
  return server;
}

export interface RaftCluster {
  members: OvsdbServer[];
  /** Every member's client TCP remote, comma-separated. */
  remote: string;
  database: string;
  /** Index of the member that is leader now, waiting up to `timeoutMs` for an election. */
  leader(timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/** A RAFT cluster of `size` members on loopback, each with its own client TCP port. */
export async function startRaftCluster(
  schema: string,
  options: { size?: number; electionTimerMs?: number; database?: string } = {},
): Promise<RaftCluster> {
  checkTools();
  const size = options.size ?? 3;
  const schemaFile = schema in SCHEMAS ? SCHEMAS[schema as keyof typeof SCHEMAS] : schema;
  const database =
    options.database ?? (JSON.parse(readFileSync(schemaFile, "utf8")) as { name: string }).name;
  const root = scratchDir("ovsdb-raft-");
  const raftPorts: number[] = [];
  for (let i = 0; i < size; i++) raftPorts.push(await freePort());
  const members: OvsdbServer[] = [];
  for (let i = 0; i < size; i++) {
    const dir = path.join(root, `s${i + 1}`);
    mkdirSync(dir);
    const dbFile = path.join(dir, "db.db");
    const local = `tcp:127.0.0.1:${raftPorts[i]}`;
    if (i === 0) {
      const args = ["create-cluster", dbFile, schemaFile, local];
      if (options.electionTimerMs) args.splice(1, 0, `--election-timer=${options.electionTimerMs}`);
      await run("ovsdb-tool", args);
    } else {
      await run("ovsdb-tool", ["join-cluster", dbFile, database, local, `tcp:127.0.0.1:${raftPorts[0]}`]);
    }
    members.push(new OvsdbServer(dir, dbFile, { name: "db", tcpPort: await freePort() }));
  }
  await Promise.all(members.map((m) => m.start()));

  const cluster: RaftCluster = {
    members,
    database,
    remote: members.map((m) => m.tcpRemote).join(","),
    async leader(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        for (let i = 0; i < members.length; i++) {
          const member = members[i] as OvsdbServer;
          if (!member.running) continue;
          try {
            const status = await member.appctl("cluster/status", database);
            if (/^Role: leader$/m.test(status) && /^Status: cluster member$/m.test(status)) return i;
          } catch {
            // not answering yet
          }
        }
        if (Date.now() > deadline) throw new SandboxError(`no leader elected within ${timeoutMs} ms`);
        await sleep(50);
      }
    },
    async stop() {
      await Promise.all(members.map((m) => m.stop()));
    },
  };
  // All members joined and one leads before the cluster is handed out.
  await cluster.leader();
  for (const member of members) {
    const deadline = Date.now() + 10_000;
    while (!/^Status: cluster member$/m.test(await member.appctl("cluster/status", database))) {
      if (Date.now() > deadline) throw new SandboxError(`member ${member.dir} did not join within 10 s`);
      await sleep(50);
    }
  }
  return cluster;
}
