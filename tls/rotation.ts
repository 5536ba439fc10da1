/**
 * Self-managed TLS: what the CA and serving certificate kept in a Secret
 * should become next. `nextRotationStep` is a pure decision over the Secret's
 * material, what the webhook configurations trust now (their caBundle) and
 * the time; `applyRotationStep` makes the keys a step needs. The Secret and
 * webhook I/O is in tls/self-managed.ts.
 *
 * A CA is replaced without a moment where the API server distrusts the
 * serving certificate: the next CA is first added to caBundle beside the
 * current one, signs only once every webhook trusts it, and the old CA leaves
 * caBundle after every replica had time to load a certificate of the new one.
 */
import { certificateFacts, issue, makeAuthority, sameCertificate, type KeyPairPem } from "./certificates.js";

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
  const retiring = retiringOf(material, now, settings);
  if (retiring.length) return { kind: "retire-old-cas", count: retiring.length };
  return { kind: "none" };
}

/** The CAs of the bundle that neither sign nor come next and whose time is up (expired, or retired after the promotion). */
function retiringOf(material: TlsMaterial, now: number, settings: RotationSettings): string[] {
  const keep = [material.ca.certPem, ...(material.nextCa ? [material.nextCa.certPem] : [])];
  return material.bundle.filter(
    (pem) =>
      !keep.some((k) => sameCertificate(k, pem)) &&
      (certificateFacts(pem).notAfter <= now || now - material.promotedAt >= settings.retireAfterMs),
  );
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
      const retiring = new Set(retiringOf(material, now, settings));
      return { ...material, bundle: material.bundle.filter((pem) => !retiring.has(pem)) };
    }
  }
}
