/** Remotes in Open vSwitch syntax: `unix:PATH`, `tcp:HOST:PORT`, `ssl:HOST:PORT`, comma-separated for a cluster. */
import { readFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import { OvsdbError } from "./errors.js";

export type Remote =
  | { kind: "unix"; path: string; text: string }
  | { kind: "tcp" | "ssl"; host: string; port: number; text: string };

/** PEM files for `ssl:` remotes, as ovsdb-server's `--private-key`, `--certificate` and `--ca-cert`. */
export interface SslFiles {
  privateKey: string;
  certificate: string;
  caCertificate: string;
}

export class RemoteSyntaxError extends OvsdbError {
  override name = "RemoteSyntaxError";
  override readonly code = "OVSDB_REMOTE_SYNTAX";
}

function parseHostPort(rest: string, text: string): { host: string; port: number } {
  let host: string;
  let portText: string;
  if (rest.startsWith("[")) {
    const end = rest.indexOf("]");
    if (end < 0 || rest[end + 1] !== ":") {
      throw new RemoteSyntaxError(`remote ${JSON.stringify(text)}: expected [IPv6]:PORT`);
    }
    host = rest.slice(1, end);
    portText = rest.slice(end + 2);
  } else {
    const colon = rest.lastIndexOf(":");
    if (colon <= 0) throw new RemoteSyntaxError(`remote ${JSON.stringify(text)}: expected HOST:PORT`);
    host = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
    throw new RemoteSyntaxError(
      `remote ${JSON.stringify(text)}: port must be 1-65535, found ${JSON.stringify(portText)}`,
    );
  }
  return { host, port };
}

/** Parses one remote or a comma-separated list of them. */
export function parseRemotes(spec: string): Remote[] {
  const parts = spec
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (parts.length === 0) throw new RemoteSyntaxError("no remote given");
  return parts.map((text): Remote => {
    if (text.startsWith("unix:")) {
      const path = text.slice(5);
      if (!path) throw new RemoteSyntaxError(`remote ${JSON.stringify(text)}: expected unix:PATH`);
      return { kind: "unix", path, text };
    }
    for (const kind of ["tcp", "ssl"] as const) {
      if (text.startsWith(`${kind}:`))
        return { kind, ...parseHostPort(text.slice(kind.length + 1), text), text };
    }
    throw new RemoteSyntaxError(
      `remote ${JSON.stringify(text)}: expected unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT`,
    );
  });
}

/**
 * Opens a socket to a remote. TLS is checked the way Open vSwitch checks it:
 * the peer's certificate must chain to the CA; the host name is not compared
 * (OVS certificates name a role, not a host). Files are read at each connect,
 * so rotated certificates are picked up on the next reconnect.
 */
export function openSocket(remote: Remote, ssl?: SslFiles): net.Socket {
  switch (remote.kind) {
    case "unix":
      return net.createConnection({ path: remote.path });
    case "tcp": {
      const socket = net.createConnection({ host: remote.host, port: remote.port });
      socket.setNoDelay(true);
      return socket;
    }
    case "ssl": {
      if (!ssl)
        throw new RemoteSyntaxError(`remote ${remote.text} needs ssl files (private key, certificate, CA)`);
      const socket = tls.connect({
        host: remote.host,
        port: remote.port,
        key: readFileSync(ssl.privateKey),
        cert: readFileSync(ssl.certificate),
        ca: readFileSync(ssl.caCertificate),
        checkServerIdentity: () => undefined,
        minVersion: "TLSv1.2",
      });
      socket.setNoDelay(true);
      return socket;
    }
  }
}
