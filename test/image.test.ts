/**
 * The container image's root filesystem (scripts/image-rootfs.sh, laid out as
 * the Dockerfile's runtime stage) runs the service: read-only, as user
 * 65532, with no shell and a clean environment, against a real
 * ovsdb-server. No registry is reachable here, so the image is not pulled or
 * pushed; chroot in a private mount namespace stands in for the runtime.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import https from "node:https";
import path from "node:path";
import { promisify } from "node:util";
import t from "tap";
import { freePort, northboundFor, scratchDir } from "./harness/index.js";
import { waitFor } from "./harness/wait.js";

const run = promisify(execFile);
const canChroot =
  process.getuid?.() === 0 && existsSync("/usr/sbin/chroot") && existsSync("/usr/bin/unshare");

const get = (url: string): Promise<{ status: number; body: string }> =>
  new Promise((resolve, reject) => {
    https
      .get(url, { rejectUnauthorized: false }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });

/** Pids of the processes whose parent is `pid`. */
function children(pid: number): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/stat`, "utf8").split(") ")[1]?.split(" ")[1] === String(pid);
      } catch {
        return false;
      }
    })
    .map(Number);
}

t.test(
  "the image's root filesystem runs the service read-only, as 65532, without a shell",
  { skip: canChroot ? false : "needs root, chroot and unshare" },
  async (t) => {
    const rootfs = path.join(scratchDir("oa-image-"), "rootfs");
    const built = await run("bash", ["scripts/image-rootfs.sh", rootfs], { maxBuffer: 16 * 1024 * 1024 });
    t.match(built.stdout, /image-rootfs: .* in /);
    t.notOk(existsSync(path.join(rootfs, "bin/sh")), "no shell in the image");
    t.notOk(existsSync(path.join(rootfs, "usr/bin/openssl")), "no openssl in the image");
    t.notOk(existsSync(path.join(rootfs, "app/dist/test")), "no tests in the image");

    const chroot = [
      "/usr/sbin/chroot",
      "--userspec=65532:65532",
      rootfs,
      "/nodejs/bin/node",
      "/app/dist/bin/ovn-admission.js",
    ];
    const help = await run("env", ["-i", ...chroot, "--help"]);
    t.match(help.stdout, /^Usage: ovn-admission \[options\]/, "--help works");
    // Without --nb-remote, the image has no ovsdb-server to start for development: told so, no stack trace.
    const alone = await run("env", ["-i", ...chroot, "--certs-dir=/tmp"]).then(
      () => ({ code: 0, stderr: "" }),
      (err: { code: number; stderr: string }) => err,
    );
    t.equal(alone.code, 1, "exit 1");
    t.match(alone.stderr, /^ovn-admission: no --nb-remote \(OVN_NB_REMOTE\) was given/);
    t.notMatch(alone.stderr, /\n\s+at /, "no stack trace");

    const nb = await northboundFor(t);
    const port = await freePort();
    // As a container runtime would: the root read-only, a tmpfs for --certs-dir, /proc, and the usual devices.
    const mounts = [
      `mount --bind ${rootfs} ${rootfs}`,
      `mount -o remount,bind,ro ${rootfs}`,
      `mount -t tmpfs -o uid=65532,gid=65532,mode=0700,size=16m tmpfs ${rootfs}/var/run/ovn-admission`,
      `mount -t proc proc ${rootfs}/proc`,
      ...["null", "zero", "random", "urandom"].map((d) => `mount --bind /dev/${d} ${rootfs}/dev/${d}`),
    ].join(" && ");
    const args = [
      "--host=127.0.0.1",
      `--port=${port}`,
      `--nb-remote=${nb.tcpRemote}`,
      "--certs-dir=/var/run/ovn-admission",
    ];
    const service = spawn(
      "/usr/bin/unshare",
      [
        "--mount",
        "--pid",
        "--fork",
        "--kill-child=SIGTERM",
        "/bin/sh",
        "-c",
        `${mounts} && exec env -i ${chroot.join(" ")} ${args.join(" ")}`,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    service.stdout.on("data", (c: Buffer) => (output += c.toString()));
    service.stderr.on("data", (c: Buffer) => (output += c.toString()));
    const exited = new Promise<void>((resolve) => service.on("exit", () => resolve()));
    t.teardown(() => {
      service.kill("SIGKILL");
    });
    const ready = await waitFor(
      "/readyz from the service in the image",
      async () => {
        const answer = await get(`https://127.0.0.1:${port}/readyz`);
        return answer.status === 200 ? answer : undefined;
      },
      20_000,
      200,
    ).catch((err: Error) => {
      t.fail(`${err.message}; the service said: ${output.slice(-2000)}`);
      return undefined;
    });
    t.ok(ready, "answers /readyz against a real ovsdb-server");
    t.match(output, /"event":"northbound-state","state":"connected"/, "connected to the Northbound");

    // The node process (unshare's grandchild) runs as 65532.
    const node = children(service.pid as number)
      .flatMap((p) => [p, ...children(p)])
      .find((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, "utf8").includes("ovn-admission.js");
        } catch {
          return false;
        }
      });
    const uid = node ? /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${node}/status`, "utf8"))?.[1] : undefined;
    t.equal(uid, "65532", "the service runs as the image's non-root user");

    // What a container runtime does at stop: SIGTERM to the service (unshare itself ignores it).
    if (node) process.kill(node, "SIGTERM");
    await exited;
    t.match(output, /"event":"stopped"/, "SIGTERM stops it cleanly (no init needed)");
  },
);
