/**
 * Configuration, validated once at start-up from flags and environment into
 * one typed object. Nothing else reads process.env or argv.
 */
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { parseRemotes } from "ovsdb-client";

export interface Config {
  /** OVN Northbound remote(s); undefined runs a local ovsdb-server (development default). */
  northboundRemote: string | undefined;
  /** How long start-up waits for the Northbound before giving up, ms. */
  northboundConnectTimeoutMs: number;
  /** Where the local Northbound keeps its database file between runs. */
  stateDir: string;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace";
}

interface OptionSpec {
  flag: string;
  env: string;
  describe: string;
  defaultText: string;
}

const OPTIONS: Record<keyof Config, OptionSpec> = {
  northboundRemote: {
    flag: "nb-remote",
    env: "OVN_NB_REMOTE",
    describe:
      "OVN Northbound remote: unix:PATH, tcp:HOST:PORT, ssl:HOST:PORT, or a comma-separated RAFT cluster",
    defaultText: "a local ovsdb-server started with the service",
  },
  northboundConnectTimeoutMs: {
    flag: "nb-connect-timeout",
    env: "OVN_NB_CONNECT_TIMEOUT",
    describe: "seconds to wait for OVN Northbound at start-up",
    defaultText: "15",
  },
  stateDir: {
    flag: "state-dir",
    env: "OVN_ADMISSION_STATE_DIR",
    describe: "directory of the local Northbound's database file",
    defaultText: "$XDG_STATE_HOME/ovn-admission or ~/.local/state/ovn-admission",
  },
  logLevel: {
    flag: "log-level",
    env: "LOG_LEVEL",
    describe: "fatal, error, warn, info, debug or trace",
    defaultText: "info",
  },
};

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function usage(): string {
  const lines = [
    "Usage: ovn-admission [options]",
    "",
    "Options (each also read from its environment variable):",
  ];
  for (const spec of Object.values(OPTIONS)) {
    lines.push(
      `  --${spec.flag} <value>  (${spec.env})`,
      `      ${spec.describe}`,
      `      default: ${spec.defaultText}`,
    );
  }
  lines.push("  --help", "      print this help and exit");
  return lines.join("\n");
}

const LOG_LEVELS = new Set(["fatal", "error", "warn", "info", "debug", "trace"]);

/** Reads flags first, then environment, then defaults. Throws ConfigError naming the option. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): Config | "help" {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        help: { type: "boolean" },
        ...Object.fromEntries(Object.values(OPTIONS).map((o) => [o.flag, { type: "string" as const }])),
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\n\n${usage()}`);
  }
  if (values.help) return "help";
  const pick = (key: keyof Config): string | undefined => {
    const spec = OPTIONS[key];
    const v = values[spec.flag];
    return typeof v === "string" ? v : env[spec.env] || undefined;
  };

  const northboundRemote = pick("northboundRemote");
  if (northboundRemote !== undefined) {
    try {
      parseRemotes(northboundRemote);
    } catch (err) {
      throw new ConfigError(`--nb-remote: ${(err as Error).message}`);
    }
  }
  const timeoutText = pick("northboundConnectTimeoutMs") ?? "15";
  const timeoutSeconds = Number(timeoutText);
  if (!/^\d+(\.\d+)?$/.test(timeoutText) || timeoutSeconds <= 0) {
    throw new ConfigError(
      `--nb-connect-timeout: expected a positive number of seconds, found ${JSON.stringify(timeoutText)}`,
    );
  }
  const logLevel = pick("logLevel") ?? "info";
  if (!LOG_LEVELS.has(logLevel)) {
    throw new ConfigError(
      `--log-level: expected one of ${[...LOG_LEVELS].join(", ")}, found ${JSON.stringify(logLevel)}`,
    );
  }
  const stateHome = env.XDG_STATE_HOME || path.join(os.homedir(), ".local", "state");
  return {
    northboundRemote,
    northboundConnectTimeoutMs: timeoutSeconds * 1000,
    stateDir: pick("stateDir") ?? path.join(stateHome, "ovn-admission"),
    logLevel: logLevel as Config["logLevel"],
  };
}
