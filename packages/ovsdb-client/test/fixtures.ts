import type { Test } from "tap";
import { startNorthbound, startOpenVswitch, type OvsdbServer } from "ovsdb-sandbox";
import { OvsdbClient, type ClientOptions } from "../src/index.js";

export const NB = "OVN_Northbound";

/** A fresh standalone OVN_Northbound server, stopped when the test ends. */
export async function northbound(t: Test): Promise<OvsdbServer> {
  const server = await startNorthbound();
  t.teardown(() => server.stop());
  return server;
}

export async function openVswitch(t: Test, externalIds?: Record<string, string>): Promise<OvsdbServer> {
  const server = await startOpenVswitch(externalIds ? { externalIds } : {});
  t.teardown(() => server.stop());
  return server;
}

/** A connected client, closed when the test ends. */
export async function connect(t: Test, options: ClientOptions): Promise<OvsdbClient> {
  const client = new OvsdbClient({ database: NB, ...options });
  t.teardown(() => client.close());
  await client.connect({ timeoutMs: 10_000 });
  return client;
}

/** Resolves when `predicate` holds, polling; rejects with `what` after `timeoutMs`. */
export async function eventually(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function once<T extends unknown[]>(
  client: OvsdbClient,
  event: "connected" | "disconnected",
): Promise<T> {
  return new Promise((resolve) => client.once(event, (...args: unknown[]) => resolve(args as T)));
}
