/**
 * The layers (docs/adr/0009-layers.md): domain/ is the floor and imports nothing of the app;
 * webhooks/, cluster/ and ovn/ stand on it and not on each other; tls/ may use cluster/'s
 * API helpers; service/, cli/ and bin/ compose. No import circle, type-only imports included.
 */
const app = "^(domain|webhooks|ovn|cluster|tls|service|cli|bin|bench|test)/";
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "An import circle (type-only ones count too).",
      from: {},
      to: { circular: true },
    },
    {
      name: "domain-is-the-floor",
      severity: "error",
      comment: "domain/ holds the contract, facts and maths: it imports nothing of the app.",
      from: { path: "^domain/" },
      to: { path: app, pathNot: "^domain/" },
    },
    {
      name: "domain-does-no-io",
      severity: "error",
      comment: "domain/ is pure: no Node built-in (fs, net, child_process…), no OVSDB client.",
      from: { path: "^domain/" },
      to: { dependencyTypes: ["core"] },
    },
    {
      name: "domain-no-ovsdb",
      severity: "error",
      from: { path: "^domain/" },
      to: { path: "(^|/)(ovsdb-client|ovsdb-sandbox|fastify|pino)(/|$)" },
    },
    {
      name: "webhooks-decide-only",
      severity: "error",
      comment: "Rules read the view through domain/'s ClusterView and hand intents to an IntentRunner.",
      from: { path: "^webhooks/" },
      to: { path: "^(ovn|cluster|tls|service|cli|bin)/" },
    },
    {
      name: "cluster-below-the-rules",
      severity: "error",
      from: { path: "^cluster/" },
      to: { path: "^(webhooks|ovn|tls|service|cli|bin)/" },
    },
    {
      name: "ovn-writes-from-the-domain",
      severity: "error",
      comment: "The OVN writers take their domain from domain/, never from the rule files.",
      from: { path: "^ovn/" },
      to: { path: "^(webhooks|cluster|tls|service|cli|bin)/" },
    },
    {
      name: "tls-beside-cluster",
      severity: "error",
      from: { path: "^tls/" },
      to: { path: "^(webhooks|ovn|service|cli|bin)/" },
    },
    {
      name: "nothing-imports-the-composition",
      severity: "error",
      comment: "service/ composes the layers; only bin/, cli/, bench/ and test/ start it.",
      from: { path: "^(domain|webhooks|ovn|cluster|tls)/" },
      to: { path: "^(service|cli|bin)/" },
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
