/**
 * --self-managed-tls: the CA and serving certificate live in a Secret of the
 * service's namespace, the CAs in the caBundle of its webhook
 * configurations. Every replica runs the same loop; the API server's
 * optimistic concurrency (create-if-absent, resourceVersion on update) makes
 * one of them win each step, so two replicas never make two CAs. Each
 * replica writes the Secret's serving pair to files, which the server
 * reloads for new connections (tls/certificates.ts reloadOnChange).
 */
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1MutatingWebhookConfiguration,
  type V1Secret,
  type V1ValidatingWebhookConfiguration,
} from "@kubernetes/client-node";
import path from "node:path";
import type { Logger } from "pino";
import { bundleOf, certificateFacts, splitBundle, writeTogether } from "./certificates.js";
import { applyRotationStep, nextRotationStep, type RotationSettings, type TlsMaterial } from "./rotation.js";
import { apiStatusOf } from "../cluster/api-status.js";

const PROMOTED_AT = "ovn-admission.io/ca-promoted-at";
const NEXT_TRUSTED_SINCE = "ovn-admission.io/next-ca-trusted-since";
const KEYS = {
  ca: "ca.crt",
  caKey: "ca.key",
  nextCa: "next-ca.crt",
  nextCaKey: "next-ca.key",
  bundle: "ca-bundle.crt",
  cert: "tls.crt",
  key: "tls.key",
} as const;

/**
 * What --self-managed-tls does with the API, as RBAC grants: the overlay's
 * rbac.yaml gives exactly these (test/rbac.test.ts).
 */
export const SELF_MANAGED_TLS_WRITES = [
  { namespace: "ovn-admission", group: "", resource: "secrets", verbs: ["create", "get", "update"] },
  {
    namespace: "cluster",
    group: "admissionregistration.k8s.io",
    resource: "mutatingwebhookconfigurations",
    verbs: ["get", "update"],
  },
  {
    namespace: "cluster",
    group: "admissionregistration.k8s.io",
    resource: "validatingwebhookconfigurations",
    verbs: ["get", "update"],
  },
] as const;

export class SelfManagedTlsError extends Error {
  override name = "SelfManagedTlsError";
}

const b64 = (text: string) => Buffer.from(text).toString("base64");
const text = (data: Record<string, string> | undefined, key: string) =>
  data?.[key] ? Buffer.from(data[key], "base64").toString("utf8") : undefined;

/** The Secret's material; a Secret missing a part says which (it is not ours to repair blindly). */
export function materialOf(secret: V1Secret): TlsMaterial {
  const data = secret.data;
  const need = (key: string) => {
    const value = text(data, key);
    if (!value)
      throw new SelfManagedTlsError(
        `Secret ${secret.metadata?.namespace}/${secret.metadata?.name}: data.${key} is missing or empty`,
      );
    return value;
  };
  const nextCert = text(data, KEYS.nextCa);
  const nextKey = text(data, KEYS.nextCaKey);
  return {
    ca: { certPem: need(KEYS.ca), keyPem: need(KEYS.caKey) },
    ...(nextCert && nextKey ? { nextCa: { certPem: nextCert, keyPem: nextKey } } : {}),
    bundle: splitBundle(need(KEYS.bundle)),
    serving: { certPem: need(KEYS.cert), keyPem: need(KEYS.key) },
    promotedAt: Number(secret.metadata?.annotations?.[PROMOTED_AT] ?? 0) || 0,
    ...(nextCert && secret.metadata?.annotations?.[NEXT_TRUSTED_SINCE]
      ? { nextCaTrustedSince: Number(secret.metadata.annotations[NEXT_TRUSTED_SINCE]) }
      : {}),
  };
}

function secretOf(
  material: TlsMaterial,
  name: string,
  namespace: string,
  resourceVersion?: string,
): V1Secret {
  const data: Record<string, string> = {
    [KEYS.ca]: b64(material.ca.certPem),
    [KEYS.caKey]: b64(material.ca.keyPem),
    [KEYS.bundle]: b64(bundleOf(material.bundle)),
    [KEYS.cert]: b64(material.serving.certPem),
    [KEYS.key]: b64(material.serving.keyPem),
  };
  if (material.nextCa) {
    data[KEYS.nextCa] = b64(material.nextCa.certPem);
    data[KEYS.nextCaKey] = b64(material.nextCa.keyPem);
  }
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    metadata: {
      name,
      namespace,
      ...(resourceVersion ? { resourceVersion } : {}),
      labels: { "app.kubernetes.io/managed-by": "ovn-admission" },
      annotations: {
        [PROMOTED_AT]: String(material.promotedAt),
        ...(material.nextCa && material.nextCaTrustedSince !== undefined
          ? { [NEXT_TRUSTED_SINCE]: String(material.nextCaTrustedSince) }
          : {}),
      },
    },
    data,
  };
}

export interface SelfManagedTlsOptions {
  namespace: string;
  secret: string;
  webhookConfiguration: string;
  /** Where this replica writes the serving pair it serves (tls.crt, tls.key, ca-bundle.crt). */
  dir: string;
  rotation: RotationSettings;
}

type WebhookConfiguration = V1MutatingWebhookConfiguration | V1ValidatingWebhookConfiguration;
type Configurations = Array<{ kind: "mutating" | "validating"; config: WebhookConfiguration }>;

/** What every webhook trusts now: the CAs in its caBundle. */
function trustedOf(configurations: Configurations): string[][] {
  return configurations.flatMap(({ config }) =>
    (config.webhooks ?? []).map((w) =>
      splitBundle(w.clientConfig.caBundle ? Buffer.from(w.clientConfig.caBundle, "base64").toString() : ""),
    ),
  );
}

export class SelfManagedTls {
  private readonly core: CoreV1Api;
  private readonly admission: AdmissionregistrationV1Api;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private current: TlsMaterial | undefined;

  constructor(
    kubeConfig: KubeConfig,
    private readonly options: SelfManagedTlsOptions,
    private readonly log: Logger,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.admission = kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  }

  get files(): { certFile: string; keyFile: string; caFile: string } {
    const at = (name: string) => path.join(this.options.dir, name);
    return { certFile: at(KEYS.cert), keyFile: at(KEYS.key), caFile: at(KEYS.bundle) };
  }

  /** Seconds until the signing CA expires (NaN before the first pass). */
  caExpiresInSeconds(now = Date.now()): number {
    return this.current ? (certificateFacts(this.current.ca.certPem).notAfter - now) / 1000 : Number.NaN;
  }

  /** One pass: the Secret one step further where needed, caBundle published, the serving files written. */
  async pass(now = Date.now()): Promise<void> {
    const { namespace, secret: name } = this.options;
    let secret = await this.readSecret();
    let material = secret ? materialOf(secret) : undefined;
    // Read once a pass: what every webhook trusts now, and what publishing compares with.
    const configurations = await this.configurations();
    const trusted = trustedOf(configurations);
    // A few steps at most per pass (e.g. promote, then retire later): each is its own guarded write.
    for (let steps = 0; steps < 4; steps++) {
      const step = nextRotationStep(material, trusted, now, this.options.rotation);
      if (step.kind === "none") break;
      const next = (await applyRotationStep(material, step, now, this.options.rotation)) as TlsMaterial;
      try {
        const body = secretOf(next, name, namespace, secret?.metadata?.resourceVersion);
        secret = secret
          ? await this.core.replaceNamespacedSecret({ name, namespace, body })
          : await this.core.createNamespacedSecret({ namespace, body });
      } catch (err) {
        // Another replica wrote first (409: exists, or a newer resourceVersion): take what it wrote.
        if (apiStatusOf(err) !== 409) throw err;
        this.log.info(
          { event: "tls-step-lost", step: step.kind, secret: `${namespace}/${name}` },
          "another replica changed the certificate Secret first; using its version",
        );
        secret = await this.readSecret();
        material = secret ? materialOf(secret) : undefined;
        break;
      }
      material = next;
      this.log.info(
        {
          event: "tls-rotated",
          step: step.kind,
          ...("reason" in step ? { reason: step.reason } : {}),
          secret: `${namespace}/${name}`,
          servingNotAfter: new Date(certificateFacts(next.serving.certPem).notAfter).toISOString(),
          caNotAfter: new Date(certificateFacts(next.ca.certPem).notAfter).toISOString(),
          bundle: next.bundle.length,
        },
        `self-managed TLS: ${step.kind}`,
      );
    }
    if (!material)
      throw new SelfManagedTlsError(`Secret ${namespace}/${name} could not be read after it was made`);
    await this.publish(material.bundle, configurations);
    this.writeFiles(material);
    this.current = material;
  }

  /** Runs `pass` now and then every `intervalMs`; a failed pass is logged and retried. */
  async start(intervalMs: number): Promise<void> {
    await this.pass();
    const tick = () => {
      this.running = this.pass()
        .catch((err: Error) =>
          this.log.warn(
            { event: "tls-pass-failed", error: err.message },
            "self-managed TLS pass failed; retried",
          ),
        )
        .finally(() => {
          this.running = undefined;
          if (this.timer) this.timer = setTimeout(tick, intervalMs).unref();
        });
    };
    this.timer = setTimeout(tick, intervalMs).unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private async readSecret(): Promise<V1Secret | undefined> {
    try {
      return await this.core.readNamespacedSecret({
        name: this.options.secret,
        namespace: this.options.namespace,
      });
    } catch (err) {
      if (apiStatusOf(err) === 404) return undefined;
      throw new SelfManagedTlsError(
        `cannot read Secret ${this.options.namespace}/${this.options.secret}: ${(err as Error).message.split("\n")[0]}`,
      );
    }
  }

  private async configurations(): Promise<Configurations> {
    const name = this.options.webhookConfiguration;
    const found: Configurations = [];
    for (const kind of ["mutating", "validating"] as const) {
      try {
        const config =
          kind === "mutating"
            ? await this.admission.readMutatingWebhookConfiguration({ name })
            : await this.admission.readValidatingWebhookConfiguration({ name });
        found.push({ kind, config });
      } catch (err) {
        if (apiStatusOf(err) !== 404) throw err;
      }
    }
    return found;
  }

  private async publish(bundle: string[], configurations: Configurations): Promise<void> {
    const caBundle = b64(bundleOf(bundle));
    if (configurations.length === 0)
      this.log.warn(
        { event: "tls-no-webhook-configuration", name: this.options.webhookConfiguration },
        "no webhook configuration of that name: its caBundle cannot be kept",
      );
    for (const { kind, config } of configurations) {
      const webhooks = config.webhooks ?? [];
      if (webhooks.every((w) => w.clientConfig.caBundle === caBundle)) continue;
      for (const w of webhooks) w.clientConfig.caBundle = caBundle;
      const name = this.options.webhookConfiguration;
      try {
        if (kind === "mutating")
          await this.admission.replaceMutatingWebhookConfiguration({
            name,
            body: config as V1MutatingWebhookConfiguration,
          });
        else
          await this.admission.replaceValidatingWebhookConfiguration({
            name,
            body: config as V1ValidatingWebhookConfiguration,
          });
      } catch (err) {
        if (apiStatusOf(err) === 409) continue; // another replica published; the next pass checks
        throw err;
      }
      this.log.info(
        { event: "tls-ca-bundle-published", configuration: `${kind}/${name}`, cas: bundle.length },
        "caBundle of the webhook configuration updated",
      );
    }
  }

  /** The serving pair and bundle as files (certificates.ts writeTogether: key first, never half-written), when they changed. */
  private writeFiles(material: TlsMaterial): void {
    const unchanged =
      this.current?.serving.certPem === material.serving.certPem &&
      this.current.serving.keyPem === material.serving.keyPem &&
      bundleOf(this.current.bundle) === bundleOf(material.bundle);
    if (unchanged) return;
    writeTogether(this.options.dir, [
      [KEYS.key, material.serving.keyPem],
      [KEYS.cert, material.serving.certPem],
      [KEYS.bundle, bundleOf(material.bundle)],
    ]);
  }
}
