import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { ensureDevCertificates } from "../../tls/certificates.js";
import { scratchDir } from "../harness/index.js";

const checkSecrets = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../../scripts/check-secrets.sh",
);

t.test("the development certificate writer leaves only the CA and the serving pair behind", async (t) => {
  const dir = path.join(scratchDir("oa-certs-"), "certs");
  const made = await ensureDevCertificates(dir);
  t.equal(made.created, true);
  t.same(readdirSync(dir).sort(), ["ca.key", "ca.pem", "tls.crt", "tls.key"]);
  // Remade (as when fewer than 7 days remain): still nothing else.
  const again = await ensureDevCertificates(dir);
  t.equal(again.created, false, "a valid pair is kept");
});

function git(dir: string, ...args: string[]): void {
  execFileSync("git", ["-C", dir, "-c", "user.email=ci@example.com", "-c", "user.name=ci", ...args]);
}

t.test("CI refuses a checkout that tracks a private key", async (t) => {
  const repo = scratchDir("oa-secrets-");
  git(repo, "init", "-q");
  writeFileSync(path.join(repo, "README.md"), "nothing secret\n");
  git(repo, "add", "README.md");
  const clean = spawnSync("bash", [checkSecrets, repo], { encoding: "utf8" });
  t.equal(clean.status, 0, clean.stderr);

  const pem = ["-----BEGIN EC PRIVATE", " KEY-----\nMHcCAQEE\n-----END EC PRIVATE", " KEY-----\n"].join("");
  writeFileSync(path.join(repo, "server.txt"), pem);
  git(repo, "add", "server.txt");
  const leaked = spawnSync("bash", [checkSecrets, repo], { encoding: "utf8" });
  t.equal(leaked.status, 1);
  t.match(leaked.stderr, /server\.txt/, "the file is named");

  git(repo, "rm", "-q", "--cached", "server.txt");
  writeFileSync(path.join(repo, "tls.key.new"), "not pem, but a key by its name\n");
  git(repo, "add", "-f", "tls.key.new");
  const named = spawnSync("bash", [checkSecrets, repo], { encoding: "utf8" });
  t.equal(named.status, 1);
  t.match(named.stderr, /tls\.key\.new/);
});
