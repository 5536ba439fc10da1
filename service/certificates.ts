/**
 * Serving certificates: a development CA and certificate made with openssl
 * when none are given, and the serving certificate reloaded from disk when
 * its files change (a cert-manager Secret mount is rewritten in place).
 */
import { execFile } from "node:child_process";
import { randomBytes, X509Certificate } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  unwatchFile,
  watchFile,
  writeFileSync,
} from "node:fs";
import { createSecureContext, type Server as TlsServer } from "node:tls";
import path from "node:path";
import { promisify } from "node:util";
import type { Logger } from "pino";

const run = promisify(execFile);

export interface ServingFiles {
  certFile: string;
  keyFile: string;
}

export interface DevCertificates extends ServingFiles {
  caFile: string;
}

/** Days a development serving certificate lives; it is remade when fewer than RENEW_DAYS remain. */
const SERVING_DAYS = 30;
const RENEW_DAYS = 7;

function validFor(certFile: string, days: number): boolean {
  if (!existsSync(certFile)) return false;
  try {
    const cert = new X509Certificate(readFileSync(certFile));
    return new Date(cert.validTo).getTime() - Date.now() > days * 86_400_000;
  } catch {
    return false;
  }
}

export interface CertificateAuthority {
  certFile: string;
  keyFile: string;
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/**
 * Runs `write` in a private scratch folder inside `dir` (same file system, so
 * a rename is atomic), then renames each finished file into place and removes
 * the folder, whatever happened: no CSR, extension file, serial or half-made
 * key is ever left beside the certificates.
 */
async function writeTogether(
  dir: string,
  names: readonly string[],
  write: (scratch: (name: string) => string) => Promise<void>,
): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const scratch = mkdtempSync(path.join(dir, ".writing-"));
  try {
    await write((name) => path.join(scratch, name));
    for (const name of names) renameSync(path.join(scratch, name), path.join(dir, name));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** A self-signed CA in `dir` as NAME.pem and NAME.key. */
export async function createCertificateAuthority(
  dir: string,
  name: string,
  commonName: string,
  days = 365,
): Promise<CertificateAuthority> {
  await writeTogether(dir, [`${name}.key`, `${name}.pem`], (at) =>
    run("openssl", [
      "req",
      "-x509",
      ...EC_KEY,
      "-days",
      String(days),
      "-subj",
      `/CN=${commonName}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-keyout",
      at(`${name}.key`),
      "-out",
      at(`${name}.pem`),
    ]).then(() => undefined),
  );
  return { certFile: path.join(dir, `${name}.pem`), keyFile: path.join(dir, `${name}.key`) };
}

export interface CertificateRequest {
  commonName: string;
  /** Subject organization: for a Kubernetes client certificate, its group. */
  organization?: string;
  /** "IP:127.0.0.1", "DNS:localhost"... */
  subjectAltNames?: string[];
  usage: "serverAuth" | "clientAuth";
  days?: number;
}

/**
 * A key and certificate signed by `ca`, written as NAME.crt and NAME.key.
 * Both are made in a scratch folder and renamed into place key first, so a
 * reader never pairs an old key with a new certificate for long, and nothing
 * else is left behind.
 */
export async function issueCertificate(
  dir: string,
  name: string,
  ca: CertificateAuthority,
  request: CertificateRequest,
): Promise<ServingFiles> {
  const subject = `/CN=${request.commonName}${request.organization ? `/O=${request.organization}` : ""}`;
  const extensions = [`extendedKeyUsage=${request.usage}`];
  if (request.subjectAltNames?.length) extensions.push(`subjectAltName=${request.subjectAltNames.join(",")}`);
  await writeTogether(dir, [`${name}.key`, `${name}.crt`], async (at) => {
    writeFileSync(at("ext"), `${extensions.join("\n")}\n`);
    await run("openssl", [
      "req",
      ...EC_KEY,
      "-subj",
      subject,
      "-keyout",
      at(`${name}.key`),
      "-out",
      at("csr"),
    ]);
    await run("openssl", [
      "x509",
      "-req",
      "-in",
      at("csr"),
      "-CA",
      ca.certFile,
      "-CAkey",
      ca.keyFile,
      // A random serial, so no .srl file is kept beside the CA.
      "-set_serial",
      `0x${randomBytes(16).toString("hex")}`,
      "-days",
      String(request.days ?? 30),
      "-extfile",
      at("ext"),
      "-out",
      at(`${name}.crt`),
    ]);
  });
  return { certFile: path.join(dir, `${name}.crt`), keyFile: path.join(dir, `${name}.key`) };
}

/**
 * Makes (or keeps, while valid) a development CA and a serving certificate
 * for 127.0.0.1 and localhost in `dir`. The CA key never leaves `dir`.
 */
export async function ensureDevCertificates(dir: string): Promise<DevCertificates & { created: boolean }> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = { certFile: path.join(dir, "ca.pem"), keyFile: path.join(dir, "ca.key") };
  const serving = { certFile: path.join(dir, "tls.crt"), keyFile: path.join(dir, "tls.key") };
  if (
    validFor(ca.certFile, RENEW_DAYS) &&
    validFor(serving.certFile, RENEW_DAYS) &&
    existsSync(serving.keyFile)
  ) {
    return { ...serving, caFile: ca.certFile, created: false };
  }
  if (!validFor(ca.certFile, RENEW_DAYS) || !existsSync(ca.keyFile)) {
    await createCertificateAuthority(dir, "ca", "ovn-admission development CA");
  }
  await issueCertificate(dir, "tls", ca, {
    commonName: "ovn-admission",
    subjectAltNames: ["IP:127.0.0.1", "DNS:localhost"],
    usage: "serverAuth",
    days: SERVING_DAYS,
  });
  return { ...serving, caFile: ca.certFile, created: true };
}

export class CertificateError extends Error {
  override name = "CertificateError";
}

export interface ServingCertificate {
  cert: Buffer;
  key: Buffer;
  fingerprint: string;
  validTo: string;
}

/** Reads and checks a key pair; throws CertificateError naming the file when it is unusable. */
export function readServingCertificate(files: ServingFiles): ServingCertificate {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(files.certFile);
    key = readFileSync(files.keyFile);
  } catch (err) {
    throw new CertificateError(`cannot read serving certificate: ${(err as Error).message}`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new CertificateError(
      `${files.certFile} and ${files.keyFile} do not form a key pair: ${(err as Error).message}`,
    );
  }
  const x509 = new X509Certificate(cert);
  return { cert, key, fingerprint: x509.fingerprint256, validTo: x509.validTo };
}

/**
 * Watches the key pair and gives the TLS server the new one for new
 * connections. A half-written pair (key and certificate not matching yet) is
 * skipped and retried at the next change or poll.
 */
export function reloadOnChange(
  server: TlsServer,
  files: ServingFiles,
  intervalMs: number,
  log: Logger,
  /** Kept in every new context: the CA that verifies client certificates, when there is one. */
  clientCa?: Buffer,
): () => void {
  let current = readServingCertificate(files).fingerprint;
  const check = (): void => {
    let next: ServingCertificate;
    try {
      next = readServingCertificate(files);
    } catch (err) {
      log.warn(
        { event: "certificate-reload-skipped", error: (err as Error).message },
        "serving certificate not reloaded",
      );
      return;
    }
    if (next.fingerprint === current) return;
    server.setSecureContext({
      cert: next.cert,
      key: next.key,
      minVersion: "TLSv1.2",
      ...(clientCa ? { ca: clientCa } : {}),
    });
    log.info(
      {
        event: "certificate-reloaded",
        fingerprint: next.fingerprint,
        validTo: next.validTo,
        previous: current,
      },
      "serving certificate reloaded for new connections",
    );
    current = next.fingerprint;
  };
  for (const file of [files.certFile, files.keyFile])
    watchFile(file, { interval: intervalMs, persistent: false }, check);
  return () => {
    for (const file of [files.certFile, files.keyFile]) unwatchFile(file, check);
  };
}
