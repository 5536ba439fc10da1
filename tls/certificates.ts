/**
 * Serving certificates: CAs and certificates made in-process with
 * @peculiar/x509 on Node's WebCrypto (ECDSA P-256; no openssl or other tool
 * is needed where the service runs), a development CA and certificate when
 * none are given, and the serving certificate reloaded from disk when its
 * files change (a cert-manager Secret mount is rewritten in place).
 */
// @peculiar/x509 resolves its parsers through tsyringe, which needs the Reflect metadata API first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { randomBytes, webcrypto, X509Certificate } from "node:crypto";
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
import type { Logger } from "pino";

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

/** A certificate and its private key, PEM (PKCS#8 for the key). */
export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

const EC: webcrypto.EcKeyGenParams & webcrypto.EcdsaParams = {
  name: "ECDSA",
  namedCurve: "P-256",
  hash: "SHA-256",
};

/** Validity: whole days, or seconds (short-lived certificates in tests of rotation). */
export type Validity = { days: number } | { seconds: number };

function validityOf(validity: Validity, now: number): { notBefore: Date; notAfter: Date } {
  const ms = "days" in validity ? validity.days * 86_400_000 : validity.seconds * 1000;
  // Back-dated (a minute, or a tenth of a short life): clocks of the API server and this replica may differ a little.
  const notBefore = new Date(now - Math.min(60_000, ms / 10));
  return { notBefore, notAfter: new Date(now + ms) };
}

/** A positive 128-bit serial, so no serial file is kept beside a CA. */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f;
  return bytes.toString("hex");
}

async function keyPair(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  return withNewline(x509.PemConverter.encode(await webcrypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY"));
}

/** PEM ends with a newline: concatenated into a bundle, each block stays on its own lines (Go's PEM reader needs that). */
const withNewline = (pem: string) => (pem.endsWith("\n") ? pem : `${pem}\n`);

/** A self-signed CA. */
export async function makeAuthority(
  commonName: string,
  validity: Validity,
  now = Date.now(),
): Promise<KeyPairPem> {
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: new x509.Name([{ CN: [commonName] }]),
    ...validityOf(validity, now),
    keys,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: withNewline(cert.toString("pem")), keyPem: await keyPem(keys.privateKey) };
}

export interface CertificateFacts {
  fingerprint: string;
  notBefore: number;
  notAfter: number;
  names: string[];
  certificate: X509Certificate;
}

const facts = new Map<string, CertificateFacts>();

/** The certificate's dates and names, parsed once per PEM. */
export function certificateFacts(pem: string): CertificateFacts {
  let found = facts.get(pem);
  if (!found) {
    const certificate = new X509Certificate(pem);
    found = {
      fingerprint: certificate.fingerprint256,
      notBefore: Date.parse(certificate.validFrom),
      notAfter: Date.parse(certificate.validTo),
      // Node prints "DNS:a, IP Address:127.0.0.1"; the flags say "DNS:a" and "IP:127.0.0.1".
      names: (certificate.subjectAltName ?? "")
        .split(", ")
        .filter(Boolean)
        .map((n) => n.replace(/^IP Address:/, "IP:"))
        .sort(),
      certificate,
    };
    if (facts.size > 64) facts.clear();
    facts.set(pem, found);
  }
  return found;
}

export const sameCertificate = (a: string, b: string): boolean =>
  certificateFacts(a).fingerprint === certificateFacts(b).fingerprint;

/** Splits a PEM bundle into its certificates. */
export function splitBundle(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}

/** A bundle of certificates, each on its own lines (Go's PEM reader needs them apart). */
export const bundleOf = (pems: readonly string[]): string => pems.map(withNewline).join("");

export interface CertificateRequest {
  commonName: string;
  /** Subject organization: for a Kubernetes client certificate, its group. */
  organization?: string;
  /** "IP:127.0.0.1", "DNS:localhost"... */
  subjectAltNames?: string[];
  usage: "serverAuth" | "clientAuth";
  days?: number;
  /** Instead of days: a short life, in seconds. */
  seconds?: number;
}

function subjectAltName(entry: string): x509.JsonGeneralName {
  const [kind, ...rest] = entry.split(":");
  const value = rest.join(":");
  if (kind === "IP") return { type: "ip", value };
  if (kind === "DNS") return { type: "dns", value };
  throw new CertificateError(`subject alternative name ${entry}: expected IP:<address> or DNS:<name>`);
}

/** A key and certificate for `request`, signed by the CA `ca`. */
export async function issue(
  ca: KeyPairPem,
  request: CertificateRequest,
  now = Date.now(),
): Promise<KeyPairPem> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await webcrypto.subtle.importKey(
    "pkcs8",
    x509.PemConverter.decodeFirst(ca.keyPem),
    EC,
    false,
    ["sign"],
  );
  const keys = await keyPair();
  const subject: Record<string, string[]> = { CN: [request.commonName] };
  if (request.organization) subject.O = [request.organization];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([
      request.usage === "serverAuth" ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
    ]),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(caCert),
  ];
  if (request.subjectAltNames?.length)
    extensions.push(new x509.SubjectAlternativeNameExtension(request.subjectAltNames.map(subjectAltName)));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: new x509.Name([subject]),
    issuer: caCert.subjectName,
    ...validityOf(request.seconds ? { seconds: request.seconds } : { days: request.days ?? 30 }, now),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: EC,
    extensions,
  });
  return { certPem: withNewline(cert.toString("pem")), keyPem: await keyPem(keys.privateKey) };
}

/**
 * Writes `files` (name -> content) into `dir` through a private scratch
 * folder on the same file system, renaming each into place (keys first): a
 * reader never finds a half-written file, and nothing else is left behind.
 */
export function writeTogether(dir: string, files: Array<[string, string]>): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const scratch = mkdtempSync(path.join(dir, ".writing-"));
  try {
    for (const [name, content] of files) writeFileSync(path.join(scratch, name), content, { mode: 0o600 });
    for (const [name] of files) renameSync(path.join(scratch, name), path.join(dir, name));
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
  const made = await makeAuthority(commonName, { days });
  writeTogether(dir, [
    [`${name}.key`, made.keyPem],
    [`${name}.pem`, made.certPem],
  ]);
  return { certFile: path.join(dir, `${name}.pem`), keyFile: path.join(dir, `${name}.key`) };
}

/** A key and certificate signed by `ca`, written as NAME.key and NAME.crt (key first). */
export async function issueCertificate(
  dir: string,
  name: string,
  ca: CertificateAuthority,
  request: CertificateRequest,
): Promise<ServingFiles> {
  const made = await issue(
    { certPem: readFileSync(ca.certFile, "utf8"), keyPem: readFileSync(ca.keyFile, "utf8") },
    request,
  );
  writeTogether(dir, [
    [`${name}.key`, made.keyPem],
    [`${name}.crt`, made.certPem],
  ]);
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
