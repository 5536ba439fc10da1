/**
 * The layers (docs/adr/0005-layers-as-folders.md): domain/ is the floor and imports nothing of the
 * app; webhooks/, cluster/ and ovn/ stand on it and not on each other; tls/ may use cluster/'s API
 * helpers; service/, cli/ and bin/ compose. No import circle, type-only imports included.
 */
const app = "^(domain|webhooks|ovn|cluster|tls|service|cli|bin|bench|test)/";

/** [rule, the folder, the folders it may not import, why] */
const layers = [
  [
    "domain-is-the-floor",
    "domain",
    "webhooks|ovn|cluster|tls|service|cli|bin|bench|test",
    "domain/ holds the contract, facts and maths: it imports nothing of the app",
  ],
  [
    "webhooks-decide-only",
    "webhooks",
    "ovn|cluster|tls|service|cli|bin",
    "rules read domain/'s ClusterView and hand intents to an IntentRunner",
  ],
  [
    "cluster-below-the-rules",
    "cluster",
    "webhooks|ovn|tls|service|cli|bin",
    "the view's store and informers know nothing of rules or writers",
  ],
  [
    "ovn-writes-from-the-domain",
    "ovn",
    "webhooks|cluster|tls|service|cli|bin",
    "the OVN writers take their domain from domain/, never from the rule files",
  ],
  [
    "tls-beside-cluster",
    "tls",
    "webhooks|ovn|service|cli|bin",
    "certificates use cluster/'s API helpers and nothing else of the app",
  ],
  ["service-composes", "service", "cli|bin", "only bin/, cli/, bench/ and test/ start the service"],
];

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "An import circle (type-only ones count too).",
      from: {},
      to: { circular: true },
    },
    ...layers.map(([name, folder, not, comment]) => ({
      name,
      severity: "error",
      comment,
      from: { path: `^${folder}/` },
      to: { path: `^(${not})/` },
    })),
    {
      name: "domain-does-no-io",
      severity: "error",
      comment:
        "domain/ is pure: no Node built-in (fs, net, child_process…), no OVSDB client, server or logger.",
      from: { path: "^domain/" },
      to: { dependencyTypes: ["core"] },
    },
    {
      name: "domain-no-io-packages",
      severity: "error",
      from: { path: "^domain/" },
      to: { path: "(^|/)(ovsdb-client|ovsdb-sandbox|fastify|pino)(/|$)" },
    },
    {
      name: "packages-stand-alone",
      severity: "error",
      comment: "packages/* are libraries others could use: no import from the service.",
      from: { path: "^packages/" },
      to: { path: app },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "(^|/)(dist|node_modules)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
    combinedDependencies: false,
  },
};
