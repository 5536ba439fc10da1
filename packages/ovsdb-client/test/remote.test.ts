import t from "tap";
import { parseRemotes, RemoteSyntaxError } from "../src/index.js";

t.test("parses OVS remote syntax", async (t) => {
  t.same(parseRemotes("unix:/run/ovn/ovnnb_db.sock"), [
    { kind: "unix", path: "/run/ovn/ovnnb_db.sock", text: "unix:/run/ovn/ovnnb_db.sock" },
  ]);
  t.same(parseRemotes("tcp:10.0.0.1:6641"), [
    { kind: "tcp", host: "10.0.0.1", port: 6641, text: "tcp:10.0.0.1:6641" },
  ]);
  t.same(parseRemotes("ssl:[fd00::1]:6641"), [
    { kind: "ssl", host: "fd00::1", port: 6641, text: "ssl:[fd00::1]:6641" },
  ]);
  const cluster = parseRemotes("tcp:10.0.0.1:6641, tcp:10.0.0.2:6641,tcp:10.0.0.3:6641");
  t.same(
    cluster.map((r) => r.text),
    ["tcp:10.0.0.1:6641", "tcp:10.0.0.2:6641", "tcp:10.0.0.3:6641"],
  );
});

t.test("bad remotes say what was expected", async (t) => {
  t.throws(() => parseRemotes("http://x"), { message: /expected unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT/ });
  t.throws(() => parseRemotes("tcp:10.0.0.1"), RemoteSyntaxError);
  t.throws(() => parseRemotes("tcp:10.0.0.1:99999"), { message: /port must be 1-65535, found "99999"/ });
  t.throws(() => parseRemotes(""), { message: /no remote given/ });
});
