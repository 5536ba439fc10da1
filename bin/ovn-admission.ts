#!/usr/bin/env node
/**
 * Entry point: validates configuration, connects to OVN Northbound (starting
 * a local ovsdb-server on embedded defaults), and shuts down cleanly on
 * SIGINT/SIGTERM.
 */
import { mkdirSync } from "node:fs";
import { pino } from "pino";
import { OvsdbClient } from "ovsdb-client";
import { startNorthbound, type OvsdbServer } from "ovsdb-sandbox";
import { ConfigError, loadConfig, usage } from "../service/config.js";

const NB = "OVN_Northbound";

async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ovn-admission: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (config === "help") {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const log = pino({ name: "ovn-admission", level: config.logLevel });

  let localNorthbound: OvsdbServer | undefined;
  let remote = config.northboundRemote;
  if (!remote) {
    mkdirSync(config.stateDir, { recursive: true });
    localNorthbound = await startNorthbound({ dir: config.stateDir, tcp: false });
    remote = localNorthbound.unixRemote;
    log.info(
      { event: "local-northbound-started", remote, dbFile: localNorthbound.dbFile, pid: localNorthbound.pid },
      "started a local ovsdb-server with the OVN_Northbound schema (no --nb-remote given)",
    );
  }

  const northbound = new OvsdbClient({ remote, database: NB });
  northbound.on("state", (state, detail) =>
    log.info(
      { event: "northbound-state", state, remote: detail.remote, error: detail.error?.message },
      `OVN Northbound ${state}`,
    ),
  );
  try {
    await northbound.connect({ timeoutMs: config.northboundConnectTimeoutMs });
  } catch (err) {
    log.error(
      { event: "northbound-unreachable", remote, error: (err as Error).message },
      "cannot reach OVN Northbound",
    );
    northbound.close();
    await localNorthbound?.stop();
    return 1;
  }
  const schema = await northbound.getSchema(NB);
  log.info(
    { event: "ready", remote: northbound.remote, schemaVersion: schema.version, tables: schema.tables.size },
    "connected to OVN Northbound; the admission webhooks are not served yet (issue 3), press Ctrl-C to stop",
  );

  await new Promise<void>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => resolve());
  });
  log.info({ event: "stopping" }, "stopping");
  northbound.close();
  await localNorthbound?.stop();
  log.info({ event: "stopped" }, "stopped");
  return 0;
}

process.exitCode = await main();
