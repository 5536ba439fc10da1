#!/usr/bin/env node
/** The ovn-admission command: configuration, start, graceful stop on SIGINT/SIGTERM; or `check`. */
import { ConfigError, loadConfig, usage } from "../service/config.js";
import { CertificateError } from "../tls/certificates.js";
import { StartupError, startService } from "../service/server.js";

async function main(): Promise<number> {
  // `ovn-admission check`: the rules on manifests before merge (cli/check.ts).
  if (process.argv[2] === "check") {
    const { runCheck } = await import("../cli/check.js");
    return runCheck(
      process.argv.slice(3),
      process.env,
      (text) => process.stdout.write(text),
      (text) => process.stderr.write(text),
    );
  }
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
    process.stdout.write(`${usage(process.env)}\n`);
    return 0;
  }
  let service;
  try {
    service = await startService(config);
  } catch (err) {
    if (err instanceof StartupError || err instanceof CertificateError) {
      process.stderr.write(`ovn-admission: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  await new Promise<void>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => resolve());
  });
  await service.close();
  return 0;
}

process.exitCode = await main();
