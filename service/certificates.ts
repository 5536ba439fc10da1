/**
 * Serving certificates: a development CA and certificate made with openssl
 * when none are given, and the serving certificate reloaded from disk when
 * its files change (a cert-manager Secret mount is rewritten in place).
 */
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, unwatchFile, watchFile, writeFileSync } from "node:fs";
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

/**
 * Makes (or keeps, while valid) a development CA and a serving certificate
 * for 127.0.0.1 and localhost in `dir`. The CA key never leaves `dir`.
 */
export async function ensureDevCertificates(dir: string): Promise<DevCertificates & { created: boolean }> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const f = (name: string) => path.join(dir, name);
  const files = { caFile: f("ca.pem"), certFile: f("tls.crt"), keyFile: f("tls.key") };
  if (
    validFor(files.caFile, RENEW_DAYS) &&
    validFor(files.certFile, RENEW_DAYS) &&
    existsSync(files.keyFile)
  ) {
    return { ...files, created: false };
  }
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  if (!validFor(files.caFile, RENEW_DAYS) || !existsSync(f("ca.key"))) {
    await run("openssl", [
      "req",
      "-x509",
      ...ec,
      "-days",
      "365",
      "-subj",
      "/CN=ovn-admission development CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-keyout",
      f("ca.key"),
      "-out",
      files.caFile,
    ]);
  }
  writeFileSync(f("tls.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  await run("openssl", [
    "req",
    ...ec,
    "-subj",
    "/CN=ovn-admission",
    "-keyout",
    f("tls.key.new"),
    "-out",
    f("tls.csr"),
  ]);
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    f("tls.csr"),
    "-CA",
    files.caFile,
    "-CAkey",
    f("ca.key"),
    "-CAcreateserial",
    "-days",
    String(SERVING_DAYS),
    "-extfile",
    f("tls.ext"),
    "-out",
    f("tls.crt.new"),
  ]);
  // Key and certificate are swapped in together, so a reader never pairs an old key with a new certificate.
  writeFileSync(files.keyFile, readFileSync(f("tls.key.new")), { mode: 0o600 });
  writeFileSync(files.certFile, readFileSync(f("tls.crt.new")));
  return { ...files, created: true };
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
    server.setSecureContext({ cert: next.cert, key: next.key, minVersion: "TLSv1.2" });
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
