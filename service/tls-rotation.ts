/**
 * Self-managed TLS: what the CA and serving certificate kept in a Secret
 * should become next. `nextRotationStep` is a pure decision over the Secret's
 * material, what the webhook configurations trust now (their caBundle) and
 * the time; `applyRotationStep` makes the keys a step needs. The Secret and
 * webhook I/O is in cluster/self-managed-tls.ts.
 *
 * A CA is replaced without a moment where the API server distrusts the
 * serving certificate: the next CA is first added to caBundle beside the
 * current one, signs only once every webhook trusts it, and the old CA leaves
 * caBundle after every replica had time to load a certificate of the new one.
 */
import { X509Certificate } from "node:crypto";
import { issue, makeAuthority, type KeyPairPem } from "./certificates.js";

export interface TlsMaterial {
  /** The CA that signs the serving certificate. */
  ca: KeyPairPem;
  /** A CA in caBundle that does not sign yet. */
  nextCa?: KeyPairPem;
  /** Since when (ms) every webhook's caBundle holds `nextCa`. */
  nextCaTrustedSince?: number;
  /** Every CA the webhooks should trust (PEM each): the signer, the next and retiring ones. */
  bundle: string[];
  serving: KeyPairPem;
  /** When `ca` began to sign (ms); old CAs leave the bundle `retireAfterMs` later. */
  promotedAt: number;
}

export interface RotationSettings {
  caValidityMs: number;
  servingValidityMs: number;
  /** The serving certificate's subject alternative names: "DNS:..." and "IP:...". */
  names: string[];
  /** How long an old CA stays trusted after the new one signs: every replica reloads in that time. */
  retireAfterMs: number;
  /**
   * How long a CA must have been in every caBundle before it signs: API
   * servers read webhook configurations through their own watch, a little
   * after the object changed.
   */
  propagationMs: number;
}

export type RotationStep =
  | { kind: "create" }
  | { kind: "stage-next-ca" }
  | { kind: "next-ca-trusted" }
  | { kind: "promote-next-ca" }
  | { kind: "renew-serving"; reason: string }
  | { kind: "retire-old-cas"; count: number }
  | { kind: "none" };

interface CertificateFacts {
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

const sameCertificate = (a: string, b: string) =>
  certificateFacts(a).fingerprint === certificateFacts(b).fingerprint;

/** Splits a PEM bundle into its certificates. */
export function splitBundle(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}

/**
 * The next thing to do, one step at a time. `trusted` holds, per webhook of
 * both configurations, the CAs its caBundle has now.
 */
export function nextRotationStep(
  material: TlsMaterial | undefined,
  trusted: string[][],
  now: number,
  settings: RotationSettings,
): RotationStep {
  if (!material) return { kind: "create" };
  const ca = certificateFacts(material.ca.certPem);
  if (material.nextCa) {
    const next = material.nextCa.certPem;
    const everywhere =
      trusted.length > 0 && trusted.every((cas) => cas.some((pem) => sameCertificate(pem, next)));
    if (everywhere && material.nextCaTrustedSince === undefined) return { kind: "next-ca-trusted" };
    if (everywhere && now - (material.nextCaTrustedSince as number) >= settings.propagationMs)
      return { kind: "promote-next-ca" };
  } else if (ca.notAfter - now < (ca.notAfter - ca.notBefore) / 2) {
    return { kind: "stage-next-ca" };
  }
  const serving = certificateFacts(material.serving.certPem);
  const reason =
    serving.notAfter - now < (serving.notAfter - serving.notBefore) / 3
      ? "a third of its life is left"
      : !serving.certificate.checkIssued(ca.certificate) ||
          !serving.certificate.verify(ca.certificate.publicKey)
        ? "not signed by the current CA"
        : serving.names.join(",") !== [...settings.names].sort().join(",")
          ? `its names ${serving.names.join(",")} are not ${[...settings.names].sort().join(",")}`
          : undefined;
  if (reason) return { kind: "renew-serving", reason };
  const keep = [material.ca.certPem, ...(material.nextCa ? [material.nextCa.certPem] : [])];
  const old = material.bundle.filter((pem) => !keep.some((k) => sameCertificate(k, pem)));
  const retiring = old.filter(
    (pem) => certificateFacts(pem).notAfter <= now || now - material.promotedAt >= settings.retireAfterMs,
  );
  if (retiring.length) return { kind: "retire-old-cas", count: retiring.length };
  return { kind: "none" };
}

const CA_NAME = "ovn-admission self-managed CA";

async function servingOf(ca: KeyPairPem, settings: RotationSettings, now: number): Promise<KeyPairPem> {
  return issue(
    ca,
    {
      commonName: settings.names.find((n) => n.startsWith("DNS:"))?.slice(4) ?? "ovn-admission",
      subjectAltNames: settings.names,
      usage: "serverAuth",
      seconds: settings.servingValidityMs / 1000,
    },
    now,
  );
}

/** The material after `step`: new keys where the step needs them, nothing else changed. */
export async function applyRotationStep(
  material: TlsMaterial | undefined,
  step: RotationStep,
  now: number,
  settings: RotationSettings,
): Promise<TlsMaterial | undefined> {
  switch (step.kind) {
    case "none":
      return material;
    case "create": {
      const ca = await makeAuthority(CA_NAME, { seconds: settings.caValidityMs / 1000 }, now);
      return { ca, bundle: [ca.certPem], serving: await servingOf(ca, settings, now), promotedAt: now };
    }
  }
  if (!material) throw new Error(`rotation step ${step.kind} needs existing material`);
  switch (step.kind) {
    case "stage-next-ca": {
      const nextCa = await makeAuthority(CA_NAME, { seconds: settings.caValidityMs / 1000 }, now);
      return { ...material, nextCa, bundle: [...material.bundle, nextCa.certPem] };
    }
    case "next-ca-trusted":
      return { ...material, nextCaTrustedSince: now };
    case "promote-next-ca": {
      const ca = material.nextCa as KeyPairPem;
      return { ca, bundle: material.bundle, serving: await servingOf(ca, settings, now), promotedAt: now };
    }
    case "renew-serving":
      return { ...material, serving: await servingOf(material.ca, settings, now) };
    case "retire-old-cas": {
      const keep = [material.ca.certPem, ...(material.nextCa ? [material.nextCa.certPem] : [])];
      return {
        ...material,
        bundle: material.bundle.filter(
          (pem) =>
            keep.some((k) => sameCertificate(k, pem)) ||
            (certificateFacts(pem).notAfter > now && now - material.promotedAt < settings.retireAfterMs),
        ),
      };
    }
  }
}
