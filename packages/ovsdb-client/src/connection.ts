/**
 * Choosing a member to stay on: what a RAFT member says of the database's
 * role (`_Server`), leaving a member that loses it as ovsdb-idl does, and the
 * backoff between attempts. The client's state machine (client.ts) uses them.
 */
import { OvsdbError, RpcError } from "./errors.js";
import type { TableUpdates2 } from "./cache.js";
import type { RpcConnection } from "./wire/jsonrpc.js";

/** Where a database lives in a cluster, from the `_Server` database. */
export interface ServerRole {
  model: string;
  connected: boolean;
  leader: boolean;
}

/**
 * The database's role on the server a connection reached, from `_Server`;
 * undefined for a standalone server without it. Fails when the server does
 * not serve the database at all, naming what it serves.
 */
export async function serverRole(
  connection: RpcConnection,
  database: string,
): Promise<ServerRole | undefined> {
  const select = async (): Promise<ServerRole | undefined> => {
    const result = await connection.request("transact", [
      "_Server",
      {
        op: "select",
        table: "Database",
        where: [["name", "==", database]],
        columns: ["model", "connected", "leader"],
      },
    ]);
    return (result as Array<{ rows?: ServerRole[] }>)[0]?.rows?.[0];
  };
  let row: ServerRole | undefined;
  try {
    row = await select();
  } catch (err) {
    if (err instanceof RpcError) return undefined; // a server without _Server: standalone
    throw err;
  }
  if (row) return row;
  const served = ((await connection.request("list_dbs", [])) as string[]).filter((d) => d !== "_Server");
  if (!served.includes(database))
    throw new OvsdbError(
      `the server does not serve database ${database} (it serves ${served.join(", ") || "no database"})`,
    );
  // ovsdb-server fills _Server from its main loop: a client that connects as it starts can be
  // answered before the row is there. Asked again for up to a second, then taken as unknown.
  for (let asked = 1; asked < 50 && !row; asked++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    row = await select();
  }
  return row;
}

/** Leaves a member that loses leadership or its cluster, as ovsdb-idl does. */
export function watchRole(connection: RpcConnection, database: string, leaderOnly: boolean): void {
  connection.onNotification((method, params) => {
    if (method !== "update2" || params[0] !== "_server_role") return;
    const rows = (params[1] as TableUpdates2 | undefined)?.Database ?? {};
    for (const update of Object.values(rows)) {
      const changed = update.modify ?? update.insert ?? update.initial;
      if (!changed) continue;
      if (changed.connected === false || (leaderOnly && changed.leader === false)) {
        connection.destroy(`${database} lost its leader role on ${connection.remote}`);
      }
    }
  });
  connection
    .request("monitor_cond", [
      "_Server",
      "_server_role",
      { Database: [{ columns: ["connected", "leader"], where: [["name", "==", database]] }] },
    ])
    .catch(() => undefined);
}

/** The wait before reconnect attempt `attempt` (0 first): exponential to a cap, with equal jitter. */
export function backoffDelay(attempt: number, backoff: { minMs: number; maxMs: number }): number {
  const { minMs, maxMs } = backoff;
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 16));
  // Equal jitter: never less than half the ceiling, so a flapping server is not hammered.
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
