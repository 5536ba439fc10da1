/**
 * The OVN pipeline a node runs, as OVN's own test suite runs it
 * (tests/ovn-macros.at: sim_add, ovn_attach): a Southbound ovsdb-server and
 * ovn-northd on a test's Northbound; per simulated node its Open_vSwitch
 * database (the one the service programs), ovs-vswitchd with the dummy
 * datapath and ovn-controller. Nothing leaves a process: no kernel module,
 * no packet on a wire. `plug` does what a CNI does; `ovnTrace` and
 * `ofprotoTrace` say where a packet goes, logically and on a node.
 *
 * Every daemon runs in the test's own directory on unix sockets, and is
 * killed (and its directory removed) when the test ends or the process exits.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { Test } from "tap";
import { scratchDir, SCHEMAS, startStandalone, type OvsdbServer } from "ovsdb-sandbox";
import type { SimulatedNode } from "./index.js";
import { waitFor } from "./wait.js";

const run = promisify(execFile);

/** The programs of the pipeline, and the tools that ask it. */
type Program =
  | "ovn-northd"
  | "ovn-controller"
  | "ovs-vswitchd"
  | "ovn-trace"
  | "ovn-sbctl"
  | "ovs-vsctl"
  | "ovs-appctl"
  | "ovsdb-tool";

/**
 * One OVN release: where its programs and schemas are. Debian bookworm's is
 * the machine's own (OVN 23.03, OVS 3.1); trixie's (OVN 25.03, OVS 3.5) runs
 * from a root laid out by scripts/ovn-trixie.sh, through that root's own
 * loader and libraries, so nothing of it is installed on the machine.
 */
export interface OvnBuild {
  /** "23.03" or "25.03": what the tests name. */
  version: string;
  /** The file to run and the arguments before the program's own. */
  command(program: Program): [string, string[]];
  schemas: { northbound: string; southbound: string; openvswitch: string };
}

const SYSTEM_PATHS: Record<Program, string> = {
  "ovn-northd": "/usr/bin/ovn-northd",
  "ovn-controller": "/usr/bin/ovn-controller",
  "ovs-vswitchd": "/usr/sbin/ovs-vswitchd",
  "ovn-trace": "/usr/bin/ovn-trace",
  "ovn-sbctl": "/usr/bin/ovn-sbctl",
  "ovs-vsctl": "/usr/bin/ovs-vsctl",
  "ovs-appctl": "/usr/bin/ovs-appctl",
  "ovsdb-tool": "/usr/bin/ovsdb-tool",
};

/** The machine's own OVN: Debian bookworm's 23.03. */
export const BOOKWORM: OvnBuild = {
  version: "23.03",
  command: (program) => [SYSTEM_PATHS[program], []],
  schemas: SCHEMAS,
};

/** OVN of a Debian trixie root (scripts/ovn-trixie.sh), run through the root's loader. */
export function trixieBuild(root: string): OvnBuild {
  // /usr/sbin/ovs-vswitchd is an absolute symlink there, which would resolve to the machine's own.
  const inRoot: Record<Program, string> = {
    ...SYSTEM_PATHS,
    "ovs-vswitchd": "/usr/lib/openvswitch-switch/ovs-vswitchd",
  };
  const loader = path.join(root, "usr/lib64/ld-linux-x86-64.so.2");
  const libraries = [
    path.join(root, "usr/lib/x86_64-linux-gnu"),
    path.join(root, "lib/x86_64-linux-gnu"),
  ].join(":");
  return {
    version: "25.03",
    command: (program) => [loader, ["--library-path", libraries, path.join(root, inRoot[program])]],
    schemas: {
      northbound: path.join(root, "usr/share/ovn/ovn-nb.ovsschema"),
      southbound: path.join(root, "usr/share/ovn/ovn-sb.ovsschema"),
      openvswitch: path.join(root, "usr/share/openvswitch/vswitch.ovsschema"),
    },
  };
}

/** The trixie root when scripts/ovn-trixie.sh laid one out on this machine (or OVN_TRIXIE_ROOT names one). */
export function trixieRoot(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const cache =
    env.OVN_ADMISSION_CACHE ??
    path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "ovn-admission");
  const root = env.OVN_TRIXIE_ROOT ?? path.join(cache, "trixie-root");
  return existsSync(path.join(root, "usr/bin/ovn-controller")) ? root : undefined;
}

const runIn = (build: OvnBuild, program: Program, args: string[], env: Record<string, string> = {}) => {
  const [file, prefix] = build.command(program);
  return run(file, [...prefix, ...args], { env: { ...process.env, ...env } });
};

/** How long the pipeline is given to converge (a loaded 2-core CI machine runs two such clusters at once). */
export const CONVERGE_MS = 30_000;

export class DataplaneError extends Error {
  override name = "DataplaneError";
}

/** What is missing to run the pipeline, named by the package that has it. */
export function missingDataplaneTools(): string[] {
  const missing: string[] = [];
  if (!existsSync(SYSTEM_PATHS["ovn-controller"])) missing.push("ovn-controller (Debian's ovn-host)");
  if (!existsSync(SYSTEM_PATHS["ovn-northd"])) missing.push("ovn-northd (Debian's ovn-central)");
  if (!existsSync(SYSTEM_PATHS["ovs-vswitchd"])) missing.push("ovs-vswitchd (Debian's openvswitch-switch)");
  if (!existsSync(SCHEMAS.southbound)) missing.push(`${SCHEMAS.southbound} (Debian's ovn-common)`);
  return missing;
}

const daemons = new Set<ChildProcess>();
let exitHooked = false;
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on("exit", () => {
    for (const child of daemons) child.kill("SIGKILL");
  });
}

/** Runs a daemon in the foreground as a child, killed with the test process; one that exits early says why. */
function startDaemon(
  [file, prefix]: [string, string[]],
  args: string[],
  env: Record<string, string>,
  logFile: string,
): { child: ChildProcess; stop(): Promise<void> } {
  hookExit();
  const child = spawn(file, [...prefix, "-vconsole:off", "-vfile:info", `--log-file=${logFile}`, ...args], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...env },
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  daemons.add(child);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.once("exit", (code) => {
    daemons.delete(child);
    if (code && code !== 0)
      process.emitWarning(
        `${path.basename(prefix.at(-1) ?? file)} exited ${code}: ${stderr.trim() || `see ${logFile}`}`,
        "DataplaneWarning",
      );
  });
  return {
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A simulated node with the daemons a real one runs beside its Open_vSwitch database. */
export interface DataplaneNode extends SimulatedNode {
  /** The node's own run directory (OVS_RUNDIR and OVN_RUNDIR): br-int.mgmt and the control sockets. */
  dir: string;
  chassis: string;
  vswitchdControl: string;
}

export interface Dataplane {
  /** Stops every daemon and database of the pipeline (not the Northbound it was given). */
  stop(): Promise<void>;
  build: OvnBuild;
  southbound: OvsdbServer;
  nodes: DataplaneNode[];
  /** ovn-sbctl on the Southbound; its output, trimmed. */
  sbctl(...args: string[]): Promise<string>;
  /** ovs-vsctl on a node's database (its ovs-vswitchd runs, so it waits for it, at most 10 s). */
  vsctl(node: DataplaneNode, ...args: string[]): Promise<string>;
  /** Plugs a pod as a CNI does: an interface on br-int whose iface-id is the logical port's name. */
  plug(node: DataplaneNode, iface: string, port: string, extra?: Record<string, string>): Promise<void>;
  /** Waits until `port` is bound to `node`'s chassis (and up, where OVN reports it). */
  bound(port: string, node: DataplaneNode): Promise<void>;
  /** ovn-trace (--minimal unless `options` name another form) of `microflow` entering `datapath`: its output text. */
  ovnTrace(datapath: string, microflow: string, options?: string[]): Promise<string>;
  /** The logical ports a packet is output to, in order (ovn-trace's `output("...")`). */
  outputs(datapath: string, microflow: string, options?: string[]): Promise<string[]>;
  /**
   * A new connection's load balancing: the backends its `ct_lb`/`ct_lb_mark`
   * chooses among (sorted), and the port the packet is delivered to.
   */
  loadBalanced(
    datapath: string,
    microflow: string,
  ): Promise<{ backends: string[]; output: string | undefined }>;
  /** ofproto/trace on the node's br-int: the tunnel a packet leaves on, if it leaves on one. */
  tunnelOf(node: DataplaneNode, flow: string): Promise<Tunnel | undefined>;
}

export interface Tunnel {
  /** The tunnel interface's name. */
  name: string;
  remoteIp: string;
  /** Set where OVN chose the local end (several encap IPs, OVN ≥ 24.03). */
  localIp?: string;
}

/**
 * The pipeline for one test on the Northbound `northbound`: Southbound and
 * ovn-northd, and a node per name with `system-id` chassis-<name>,
 * `ovn-remote` and `ovn-encap-type` set as a node's agent sets them (never
 * `ovn-encap-ip`: that is the service's, or the test's).
 */
export async function dataplaneFor(
  t: Test,
  northbound: OvsdbServer,
  names: string[],
  build: OvnBuild = BOOKWORM,
): Promise<Dataplane> {
  const dp = await startDataplane(northbound, names, build);
  t.teardown(() => dp.stop());
  return dp;
}

/** The same, stopped by the caller (benchmarks). */
export async function startDataplane(
  northbound: OvsdbServer,
  names: string[],
  build: OvnBuild = BOOKWORM,
): Promise<Dataplane> {
  const missing = build === BOOKWORM ? missingDataplaneTools() : [];
  if (missing.length > 0)
    throw new DataplaneError(`missing ${missing.join(", ")}: scripts/setup.sh --for-tests installs them`);
  const dir = scratchDir("ovn-");
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const step of stops.reverse()) await step();
    stops.length = 0;
  };
  const southbound = await startStandalone(build.schemas.southbound, { name: "sb", dir, tcp: false });
  stops.push(() => southbound.stop());
  const sbctl = async (...args: string[]) =>
    (await runIn(build, "ovn-sbctl", [`--db=${southbound.unixRemote}`, ...args])).stdout.trim();
  let nodes: DataplaneNode[];
  try {
    const northd = startDaemon(
      build.command("ovn-northd"),
      [
        `--ovnnb-db=${northbound.unixRemote}`,
        `--ovnsb-db=${southbound.unixRemote}`,
        `--pidfile=${path.join(dir, "northd.pid")}`,
        `--unixctl=${path.join(dir, "northd.ctl")}`,
      ],
      {},
      path.join(dir, "northd.log"),
    );
    stops.push(() => northd.stop());

    nodes = await Promise.all(
      names.map(async (name): Promise<DataplaneNode> => {
        const nodeDir = path.join(dir, name);
        mkdirSync(nodeDir);
        const chassis = `chassis-${name}`;
        // The node's database on its release's schema, initialised as `ovs-vsctl init` does.
        const ovs = await startStandalone(build.schemas.openvswitch, {
          name: "conf",
          dir: nodeDir,
          tcp: false,
        });
        const ids = {
          "system-id": chassis,
          hostname: name,
          "ovn-remote": southbound.unixRemote,
          "ovn-encap-type": "geneve",
        };
        await runIn(build, "ovs-vsctl", [
          `--db=${ovs.unixRemote}`,
          "--no-wait",
          "init",
          ...Object.entries(ids).flatMap(([k, v]) => [
            "--",
            "set",
            "Open_vSwitch",
            ".",
            `external_ids:${k}=${v}`,
          ]),
        ]);
        stops.push(() => ovs.stop());
        const env = { OVS_RUNDIR: nodeDir, OVN_RUNDIR: nodeDir };
        const vswitchdControl = path.join(nodeDir, "vswitchd.ctl");
        const vswitchd = startDaemon(
          build.command("ovs-vswitchd"),
          [
            ovs.unixRemote,
            "--enable-dummy=override",
            "--disable-system",
            `--pidfile=${path.join(nodeDir, "vswitchd.pid")}`,
            `--unixctl=${vswitchdControl}`,
          ],
          env,
          path.join(nodeDir, "vswitchd.log"),
        );
        stops.push(() => vswitchd.stop());
        // ovn-controller 23.03 has no --unixctl: its control socket goes to OVN_RUNDIR.
        const controller = startDaemon(
          build.command("ovn-controller"),
          [ovs.unixRemote, `--pidfile=${path.join(nodeDir, "controller.pid")}`],
          env,
          path.join(nodeDir, "controller.log"),
        );
        stops.push(() => controller.stop());
        return { name, ovs, dir: nodeDir, chassis, vswitchdControl };
      }),
    );
    // ovn-controller makes br-int and registers its chassis once it reaches the Southbound.
    for (const node of nodes) {
      await waitFor(`${node.name}'s br-int`, async () =>
        runIn(build, "ovs-vsctl", [`--db=${node.ovs.unixRemote}`, "--no-wait", "br-exists", "br-int"]).then(
          () => true,
          () => false,
        ),
      );
    }
  } catch (err) {
    // Half a pipeline is no pipeline: what started is stopped.
    await stop();
    throw err;
  }
  const vsctlOn = async (node: DataplaneNode, ...args: string[]) =>
    (await runIn(build, "ovs-vsctl", [`--db=${node.ovs.unixRemote}`, "--timeout=10", ...args])).stdout.trim();

  const ovnTrace = async (datapath: string, microflow: string, options = ["--minimal"]) =>
    (await runIn(build, "ovn-trace", [`--db=${southbound.unixRemote}`, ...options, datapath, microflow]))
      .stdout;
  const outputs = async (datapath: string, microflow: string, options?: string[]) => {
    const text = await ovnTrace(datapath, microflow, options);
    return [...text.matchAll(/output\("([^"]+)"\)/g)].map((m) => m[1] as string);
  };

  return {
    stop,
    build,
    southbound,
    nodes,
    sbctl,
    vsctl: vsctlOn,
    async plug(node, iface, port, extra = {}) {
      const ids = Object.entries({ "iface-id": port, ...extra }).map(([k, v]) => `external_ids:${k}=${v}`);
      await vsctlOn(node, "add-port", "br-int", iface, "--", "set", "Interface", iface, ...ids);
    },
    async bound(port, node) {
      const uuid = await waitFor(
        `${node.name}'s Chassis row`,
        async () =>
          (await sbctl("--bare", "--columns=_uuid", "find", "Chassis", `name=${node.chassis}`)) || undefined,
        CONVERGE_MS,
      );
      await waitFor(
        `${port} bound to ${node.chassis}`,
        async () => {
          const chassis = await sbctl(
            "--bare",
            "--columns=chassis",
            "find",
            "Port_Binding",
            `logical_port=${port}`,
          );
          return chassis === uuid;
        },
        CONVERGE_MS,
      );
    },
    ovnTrace,
    outputs,
    async loadBalanced(datapath, microflow) {
      // --ct=new: the packet opens a connection, so the load balancer's stage chooses a backend.
      const detailed = await ovnTrace(datapath, microflow, ["--detailed", "--ct=new"]);
      const chosen = /ct_lb(?:_mark)?\(backends=([^);]*)\)/.exec(detailed)?.[1] ?? "";
      const delivered = await outputs(datapath, microflow, ["--minimal", "--ct=new"]);
      return { backends: chosen.split(",").filter(Boolean).sort(), output: delivered.at(-1) };
    },
    async tunnelOf(node, flow) {
      const { stdout } = await runIn(build, "ovs-appctl", [
        "-t",
        node.vswitchdControl,
        "ofproto/trace",
        "br-int",
        flow,
      ]);
      const outputs = [...stdout.matchAll(/output:(\d+)/g)].map((m) => m[1] as string);
      const last = outputs.at(-1);
      if (!last) return undefined;
      const name = await vsctlOn(node, "--bare", "--columns=name", "find", "Interface", `ofport=${last}`);
      if (!name) return undefined;
      const type = await vsctlOn(node, "get", "Interface", name, "type");
      if (!/geneve|vxlan|stt/.test(type)) return undefined;
      const option = async (key: string) =>
        (await vsctlOn(node, "--if-exists", "get", "Interface", name, `options:${key}`)).replace(/"/g, "");
      const localIp = await option("local_ip");
      return { name, remoteIp: await option("remote_ip"), ...(localIp ? { localIp } : {}) };
    },
  };
}

/** The node's log files, for a failure's message. */
export function dataplaneLogs(node: DataplaneNode): string {
  return readdirSync(node.dir)
    .filter((f) => f.endsWith(".log"))
    .map((f) => `--- ${f}\n${readFileSync(path.join(node.dir, f), "utf8").split("\n").slice(-20).join("\n")}`)
    .join("\n");
}
