import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import t from "tap";
import { scratchDir, startNorthbound } from "ovsdb-sandbox";
import { OvsdbClient } from "../src/index.js";
import { NB } from "./fixtures.js";

const openssl = (...args: string[]) => promisify(execFile)("openssl", args);

/** A CA and two certificates signed by it, as ovs-pki would make (OVS does not check host names). */
async function pki(dir: string) {
  const f = (n: string) => path.join(dir, n);
  await openssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=test-ca",
    "-keyout",
    f("ca.key"),
    "-out",
    f("ca.pem"),
  );
  for (const who of ["server", "client"]) {
    await openssl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      `/CN=${who}`,
      "-keyout",
      f(`${who}.key`),
      "-out",
      f(`${who}.csr`),
    );
    await openssl(
      "x509",
      "-req",
      "-in",
      f(`${who}.csr`),
      "-CA",
      f("ca.pem"),
      "-CAkey",
      f("ca.key"),
      "-CAcreateserial",
      "-days",
      "2",
      "-out",
      f(`${who}.pem`),
    );
  }
  return {
    server: { privateKey: f("server.key"), certificate: f("server.pem"), caCertificate: f("ca.pem") },
    client: { privateKey: f("client.key"), certificate: f("client.pem"), caCertificate: f("ca.pem") },
  };
}

t.test("ssl: remotes with key, certificate and CA", async (t) => {
  const dir = scratchDir("ovsdb-pki-");
  const files = await pki(dir);
  const nb = await startNorthbound({ ssl: files.server });
  t.teardown(() => nb.stop());
  const client = new OvsdbClient({ remote: nb.sslRemote, database: NB, ssl: files.client });
  t.teardown(() => client.close());
  await client.connect({ timeoutMs: 5000 });
  t.same((await client.listDbs()).sort(), [NB, "_Server"]);

  // A client whose certificate the server's CA did not sign is refused.
  const other = await pki(scratchDir("ovsdb-pki-"));
  const stranger = new OvsdbClient({
    remote: nb.sslRemote,
    database: NB,
    ssl: other.client,
    reconnect: false,
  });
  t.teardown(() => stranger.close());
  await t.rejects(stranger.connect({ timeoutMs: 5000 }));

  t.throws(() => new OvsdbClient({ remote: `tcp:127.0.0.1:1,${nb.sslRemote}` }), {
    name: "RemoteSyntaxError",
    message: /remote ssl:127\.0\.0\.1:\d+ needs ssl files/,
  });
});
