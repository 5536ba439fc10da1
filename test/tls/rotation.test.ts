/** Self-managed TLS decisions, on plain material: what the next step is, and what it makes. */
import t from "tap";
import { certificateFacts } from "../../tls/certificates.js";
import {
  applyRotationStep,
  nextRotationStep,
  type RotationSettings,
  type TlsMaterial,
} from "../../tls/rotation.js";

const settings: RotationSettings = {
  caValidityMs: 100_000,
  servingValidityMs: 30_000,
  names: ["DNS:ovn-admission.ovn-admission.svc", "IP:127.0.0.1"],
  retireAfterMs: 5_000,
  propagationMs: 3_000,
};
const signedBy = (material: TlsMaterial, ca: string) =>
  certificateFacts(material.serving.certPem).certificate.checkIssued(certificateFacts(ca).certificate);

t.test("made once; renewed at a third of its life; renamed when the names change", async (t) => {
  const now = Date.now();
  t.same(nextRotationStep(undefined, [], now, settings), { kind: "create" });
  const made = (await applyRotationStep(undefined, { kind: "create" }, now, settings)) as TlsMaterial;
  t.equal(made.bundle.length, 1, "the bundle is the CA");
  t.same(certificateFacts(made.serving.certPem).names, [
    "DNS:ovn-admission.ovn-admission.svc",
    "IP:127.0.0.1",
  ]);
  t.ok(signedBy(made, made.ca.certPem), "the serving certificate is signed by the CA");
  const trusted = [[made.ca.certPem], [made.ca.certPem]];
  t.same(nextRotationStep(made, trusted, now + 1_000, settings), { kind: "none" }, "fresh: nothing to do");
  t.same(nextRotationStep(made, trusted, now + 22_000, settings), {
    kind: "renew-serving",
    reason: "a third of its life is left",
  });
  const renewed = (await applyRotationStep(
    made,
    { kind: "renew-serving", reason: "" },
    now + 22_000,
    settings,
  )) as TlsMaterial;
  t.not(
    certificateFacts(renewed.serving.certPem).fingerprint,
    certificateFacts(made.serving.certPem).fingerprint,
  );
  t.equal(renewed.ca, made.ca, "the CA stays");
  t.match(nextRotationStep(made, trusted, now, { ...settings, names: ["DNS:other.svc"] }), {
    kind: "renew-serving",
    reason: /its names DNS:ovn-admission.ovn-admission.svc,IP:127.0.0.1 are not DNS:other.svc/,
  });
});

t.test(
  "a CA is replaced without a moment of distrust: staged, promoted once trusted, then retired",
  async (t) => {
    const start = Date.now();
    const made = (await applyRotationStep(undefined, { kind: "create" }, start, settings)) as TlsMaterial;
    const old = made.ca.certPem;
    // Half the CA's life gone (its serving certificate renewed meanwhile, as the loop would).
    const half = start + 56_000;
    const fresh = (await applyRotationStep(
      made,
      { kind: "renew-serving", reason: "" },
      half,
      settings,
    )) as TlsMaterial;
    t.same(nextRotationStep(fresh, [[old]], half, settings), { kind: "stage-next-ca" });
    const staged = (await applyRotationStep(fresh, { kind: "stage-next-ca" }, half, settings)) as TlsMaterial;
    const next = staged.nextCa?.certPem as string;
    t.equal(staged.bundle.length, 2, "old and next CA both in the bundle");
    t.ok(signedBy(staged, old), "the old CA still signs");
    t.same(
      nextRotationStep(staged, [[old, next], [old]], half, settings),
      { kind: "none" },
      "one webhook does not trust the next CA yet: no promotion",
    );
    t.same(
      nextRotationStep(
        staged,
        [
          [old, next],
          [old, next],
        ],
        half,
        settings,
      ),
      { kind: "next-ca-trusted" },
    );
    const trusted = (await applyRotationStep(
      staged,
      { kind: "next-ca-trusted" },
      half,
      settings,
    )) as TlsMaterial;
    const everywhere = [
      [old, next],
      [old, next],
    ];
    t.same(
      nextRotationStep(trusted, everywhere, half + 2_999, settings),
      { kind: "none" },
      "API servers may not have read the new caBundle yet: no promotion",
    );
    t.same(nextRotationStep(trusted, everywhere, half + 3_000, settings), { kind: "promote-next-ca" });
    const promoted = (await applyRotationStep(
      trusted,
      { kind: "promote-next-ca" },
      half + 3_000,
      settings,
    )) as TlsMaterial;
    t.ok(signedBy(promoted, next), "the next CA signs a new serving certificate");
    t.equal(promoted.nextCa, undefined);
    t.equal(promoted.bundle.length, 2, "the old CA is still trusted while replicas reload");
    t.same(nextRotationStep(promoted, [[old, next]], half + 4_000, settings), { kind: "none" });
    t.same(nextRotationStep(promoted, [[old, next]], half + 8_001, settings), {
      kind: "retire-old-cas",
      count: 1,
    });
    const retired = (await applyRotationStep(
      promoted,
      { kind: "retire-old-cas", count: 1 },
      half + 8_001,
      settings,
    )) as TlsMaterial;
    t.same(
      retired.bundle.map((pem) => certificateFacts(pem).fingerprint),
      [certificateFacts(next).fingerprint],
    );
    t.same(nextRotationStep(retired, [[next]], half + 9_000, settings), { kind: "none" });
  },
);

t.test("a serving certificate its CA did not sign is renewed", async (t) => {
  const now = Date.now();
  const a = (await applyRotationStep(undefined, { kind: "create" }, now, settings)) as TlsMaterial;
  const b = (await applyRotationStep(undefined, { kind: "create" }, now, settings)) as TlsMaterial;
  t.same(nextRotationStep({ ...a, serving: b.serving }, [[a.ca.certPem]], now, settings), {
    kind: "renew-serving",
    reason: "not signed by the current CA",
  });
});
