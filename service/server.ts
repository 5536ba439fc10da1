/**
 * Starts the service from a Config: certificates, OVN Northbound (a local
 * ovsdb-server on embedded defaults), the cluster view, the HTTPS app. The
 * only place that listens and that shuts down.
 */
import { randomBytes } from "node:crypto";

import os from "node:os";
import path from "node:path";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createSecureContext, type Server as TlsServer } from "node:tls";
import Fastify, { LogController, type FastifyInstance } from "fastify";
import type { AddressInfo } from "node:net";
import { pino, type Logger } from "pino";
import { OvsdbClient } from "ovsdb-client";
import { startNorthbound, type OvsdbServer } from "ovsdb-sandbox";
import {
  findCluster,
  SERVICE_SOURCES,
  serviceSources,
  SOURCES,
  startInformers,
  type Informers,
} from "../cluster/informers.js";
import { ClusterState } from "../cluster/state.js";
import type { ClusterView } from "../domain/view.js";
import { EncapHandler, NodeDatabases } from "../ovn/encap.js";
import { IntentHandlers } from "../ovn/intent-runner.js";
import { GatewayHandler } from "../ovn/gateway.js";
import { NatHandler, type NatReconcile } from "../ovn/nat.js";
import { Programmer } from "../ovn/programmer.js";
import { Reconciler } from "../ovn/reconciler.js";
import { PortHandler } from "../ovn/ports.js";
import { SubnetSwitches } from "../ovn/switches.js";
import { NodeSubnets } from "../ovn/node-subnets.js";
import { Topology } from "../ovn/topology.js";
import { LoadBalancers } from "../ovn/load-balancers.js";
import { GatewayRouters } from "../ovn/gateway-routers.js";
import { PodAnnotator } from "../cluster/pod-annotations.js";
import { ProgrammingEvents } from "../cluster/events.js";
import { isKind, KIND_RESOURCES } from "../domain/kinds.js";
import { SelfManagedTls } from "../tls/self-managed.js";
import { LeaseElector, LEASE_NAME } from "../cluster/lease.js";
import { gatewayModeOf } from "../domain/gateway-config.js";
import { natWantOf, sameNat, type NatWant } from "../domain/nat.js";
import { buildApp, probes as probeRoutes, type Readiness } from "./app.js";
import { ROUTES, type Route } from "../webhooks/routes.js";
import { ruleSettings, type Config } from "./config.js";
import {
  certificateFacts,
  ensureDevCertificates,
  readServingCertificate,
  reloadOnChange,
  type ServingFiles,
} from "../tls/certificates.js";
import { createMetrics } from "./metrics.js";

import { CLAIMS_ROUTER, CLAIMS_SWITCH, createIfAbsent, NB, OWNER, OWNER_KEY } from "../ovn/rows.js";
import { NorthboundProfile } from "../ovn/profile.js";
import { ANNOTATION } from "../domain/annotations.js";

export interface Service {
  url: string;
  port: number;
  /** http://host:port of --metrics-port, when given. */
  metricsUrl: string | undefined;
  /** The CA that signed the serving certificate, when we made it (development). */
  caFile: string | undefined;
  northbound: OvsdbClient;
  /** The cluster view the rules read. */
  view: ClusterView;
  /** One reconcile pass of OVN with the view (it also runs by itself every --reconcile-interval). */
  reconcile(): Promise<NatReconcile | undefined>;
  /** Stops accepting, finishes in-flight admissions, closes OVSDB, stops the local Northbound. */
  close(): Promise<void>;
}

/** What tests and later issues plug in; production uses the defaults. */
export interface ServiceParts {
  log?: Logger;
  view?: ClusterView;
  handlers?: IntentHandlers;
  routes?: readonly Route[];
}

/**
 * The local development Northbound stands in for a cluster's, where the CNI
 * makes the cluster router; make it here so that the gateway and NAT work.
 */
async function ensureDevRouter(northbound: OvsdbClient, router: string, log: Logger): Promise<void> {
  const made = await createIfAbsent(northbound, "Logical_Router", {
    name: router,
    external_ids: { [OWNER_KEY]: OWNER.development },
  });
  if (made)
    log.info({ event: "dev-router-created", router }, "created the cluster router in the local Northbound");
}

export class StartupError extends Error {
  override name = "StartupError";
}

export async function startService(config: Config, parts: ServiceParts = {}): Promise<Service> {
  const log = parts.log ?? pino({ name: "ovn-admission", level: config.logLevel });

  let serving: ServingFiles | undefined;
  let caFile: string | undefined;
  if (config.tlsCertFile && config.tlsKeyFile) {
    serving = { certFile: config.tlsCertFile, keyFile: config.tlsKeyFile };
    // cert-manager puts the CA beside the pair: its expiry is reported too.
    const beside = path.join(path.dirname(config.tlsCertFile), "ca.crt");
    if (existsSync(beside)) caFile = beside;
  } else if (!config.selfManagedTls) {
    const dev = await ensureDevCertificates(config.certsDir);
    serving = dev;
    caFile = dev.caFile;
    log.info(
      {
        event: dev.created ? "dev-certificates-created" : "dev-certificates-reused",
        caFile,
        certFile: dev.certFile,
      },
      "using a development CA and serving certificate (give --tls-cert-file and --tls-key-file in production)",
    );
  }

  let localNorthbound: OvsdbServer | undefined;
  let remote = config.northboundRemote;
  if (!remote) {
    try {
      mkdirSync(config.stateDir, { recursive: true });
      localNorthbound = await startNorthbound({ dir: config.stateDir, tcp: false });
    } catch (err) {
      // In a container there is no ovsdb-server to start: the cluster's Northbound must be named.
      throw new StartupError(
        `no --nb-remote (OVN_NB_REMOTE) was given, and a local Northbound for development could not be started: ${(err as Error).message.split("\n")[0]}; in a cluster, set --nb-remote to OVN Northbound (e.g. tcp:ovn-nb.kube-system.svc:6641)`,
      );
    }
    remote = localNorthbound.unixRemote;
    log.info(
      { event: "local-northbound-started", remote, dbFile: localNorthbound.dbFile, pid: localNorthbound.pid },
      "started a local ovsdb-server with the OVN_Northbound schema (no --nb-remote given)",
    );
  }
  const northbound = new OvsdbClient({ remote, database: NB });
  northbound.on("state", (state, detail) =>
    log.info(
      { event: "northbound-state", state, remote: detail.remote, error: detail.error?.message },
      `OVN Northbound ${state}`,
    ),
  );
  let informers: Informers | undefined;
  let resyncWhenSynced: Promise<void> | undefined;
  let view: ClusterView;
  const cluster = parts.view ? undefined : findCluster(config.kubeconfig, config.inCluster);
  if (parts.view) {
    view = parts.view;
  } else {
    if (cluster) {
      // The whole control plane (ovn-kubernetes model) also turns Services into load balancers.
      const programsServices = config.networkModel === "ovn-kubernetes" && !config.alongside;
      const extra = programsServices
        ? await serviceSources(cluster.kubeConfig).catch((err: Error) => {
            log.warn(
              { event: "endpoint-slices-unknown", error: err.message },
              "cannot ask the API server which EndpointSlice version it serves; watching discovery.k8s.io/v1",
            );
            return SERVICE_SOURCES.slice(0, 2);
          })
        : [];
      informers = startInformers(cluster.kubeConfig, log, [...SOURCES, ...extra]);
      view = informers.state;
      resyncWhenSynced = informers.synced;
      log.info(
        {
          event: "cluster-view-starting",
          from: cluster.from,
          server: cluster.kubeConfig.getCurrentCluster()?.server,
        },
        "watching the cluster",
      );
    } else {
      view = ClusterState.of({});
      log.info(
        { event: "cluster-view-empty" },
        "no Kubernetes cluster found (no --kubeconfig, KUBECONFIG or service account): the cluster view is empty, rules judge on what they have",
      );
    }
  }
  // --self-managed-tls: the Secret is made or read (and caBundle published) before the server listens.
  let selfManaged: SelfManagedTls | undefined;
  if (config.selfManagedTls) {
    if (!cluster) {
      await localNorthbound?.stop();
      throw new StartupError(
        "--self-managed-tls needs a cluster (--kubeconfig, KUBECONFIG or a service account): the CA lives in a Secret there",
      );
    }
    const names = [
      `DNS:${config.serviceName}.${config.leaseNamespace}.svc`,
      `DNS:${config.serviceName}.${config.leaseNamespace}.svc.cluster.local`,
      ...config.selfManagedTlsNames,
    ];
    // A pass a tenth of a serving certificate's life (at most a minute): renewal at a third left is never missed.
    const passMs = Math.max(500, Math.min(60_000, config.servingValidityMs / 10));
    selfManaged = new SelfManagedTls(
      cluster.kubeConfig,
      {
        namespace: config.leaseNamespace,
        secret: config.selfManagedTlsSecret,
        webhookConfiguration: config.webhookConfiguration,
        dir: path.join(config.certsDir, "self-managed"),
        rotation: {
          caValidityMs: config.caValidityMs,
          servingValidityMs: config.servingValidityMs,
          names,
          // Every replica has passed and reloaded by then.
          retireAfterMs: 3 * Math.max(passMs, config.certReloadMs),
          propagationMs: 3 * passMs,
        },
      },
      log,
    );
    try {
      await selfManaged.start(passMs);
    } catch (err) {
      await localNorthbound?.stop();
      throw new StartupError(`--self-managed-tls: ${(err as Error).message.split("\n")[0]}`);
    }
    serving = selfManaged.files;
    caFile = selfManaged.files.caFile;
  }
  const servingFiles = serving as ServingFiles;
  const certificate = readServingCertificate(servingFiles);
  const expiresIn = (pem: string) => (certificateFacts(pem).notAfter - Date.now()) / 1000;
  const metrics = createMetrics(
    () => view.sizes(),
    () => {
      const seconds: Record<string, number> = {};
      try {
        seconds.serving = expiresIn(readFileSync(servingFiles.certFile, "utf8"));
        if (selfManaged) seconds.ca = selfManaged.caExpiresInSeconds();
        else if (caFile) seconds.ca = expiresIn(readFileSync(caFile, "utf8"));
      } catch {
        // a file being rewritten: the next scrape reads it
      }
      return seconds;
    },
  );
  const nodeDatabases = new NodeDatabases(
    { template: config.nodeOvsdbTemplate, overrides: config.nodeOvsdbOverrides, ssl: config.nodeOvsdbSsl },
    view,
    log,
  );
  const encap = new EncapHandler(nodeDatabases, view, log, undefined, config.networkModel);
  const gateway = new GatewayHandler(
    northbound,
    nodeDatabases,
    view,
    {
      router: config.clusterRouter,
      switchName: config.externalGatewaySwitch,
      network: config.externalGatewayNet,
      vlan: config.externalGatewayVlan,
    },
    log,
  );
  const marker = cluster ? new PodAnnotator(cluster.kubeConfig, log) : undefined;
  const events = cluster ? new ProgrammingEvents(cluster.kubeConfig, log) : undefined;
  const markRouted = (want: NatWant): void => {
    const [namespace = "", name = ""] = want.pod.split("/");
    // Routed only while the pod still asks for the row that was written.
    marker?.markRouted(want.pod, (annotations) =>
      sameNat(
        natWantOf(namespace, name, annotations, gatewayModeOf(view), config.networkModel).row,
        want.row,
      ),
    );
  };
  const nat = new NatHandler(northbound, config.clusterRouter, log, markRouted);
  const claimsOnly = config.alongside !== undefined;
  const ports = new PortHandler(northbound, log, nat, {
    claimsOnly,
    // Beside Kube-OVN, the pods it addressed before us hold their addresses through their stored annotations.
    ...(claimsOnly
      ? {
          storedHolder: (subnet: string, ip: string, pod: string) =>
            view
              .podsWithStaticIp(ip)
              .find(
                (p) =>
                  p.key !== pod &&
                  (p.annotations[ANNOTATION.logicalSwitch] ?? config.defaultSubnet) === subnet,
              )?.key,
        }
      : {}),
  });
  const profile = new NorthboundProfile(northbound, config.alongside, remote);
  const switchSettings = { clusterRouter: config.clusterRouter };
  const switches = new SubnetSwitches(northbound, switchSettings, log);
  // Seed 002's master-init and minion-init, and the watcher's load balancers: the whole control plane's.
  const ownTopology = config.networkModel === "ovn-kubernetes" && !claimsOnly;
  const topology = ownTopology
    ? new Topology(northbound, { clusterRouter: config.clusterRouter, joinSubnet: config.joinSubnet }, log)
    : undefined;
  const loadBalancers = ownTopology ? new LoadBalancers(northbound, log) : undefined;
  const gatewayRouters =
    ownTopology && config.clusterIpSubnet
      ? new GatewayRouters(
          northbound,
          {
            clusterRouter: config.clusterRouter,
            clusterIpSubnet: config.clusterIpSubnet,
            joinSubnet: config.joinSubnet,
          },
          async (node) => {
            const { chassis, missing } = await gateway.chassisOf([node]);
            if (!chassis[0]) throw new Error(`no chassis for gateway node ${node}: ${missing.join("; ")}`);
            return chassis[0];
          },
          log,
        )
      : undefined;
  const nodeSubnets =
    config.networkModel === "ovn-kubernetes" && config.clusterIpSubnet
      ? new NodeSubnets(
          northbound,
          { clusterIpSubnet: config.clusterIpSubnet, nodeSubnetPrefix: config.nodeSubnetPrefix },
          switches,
          log,
        )
      : undefined;
  // With a cluster, one replica reconciles: the holder of the Lease. Without one there is only us.
  const elector = cluster
    ? new LeaseElector(
        cluster.kubeConfig,
        {
          namespace: config.leaseNamespace,
          name: LEASE_NAME,
          identity: `${os.hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`,
          leaseDurationMs: config.leaseDurationMs,
          retryMs: Math.min(2_000, config.leaseDurationMs / 4),
          // Outside a cluster (npm start with a kubeconfig) nothing else would make it.
          createNamespace: !config.inCluster,
        },
        log,
        (leading) => {
          metrics.reconcilerLeader.set(leading ? 1 : 0);
          // Taking over: program everything from the view once, then follow its changes.
          if (leading) {
            resync();
            void reconciler.run();
          }
        },
      )
    : undefined;
  if (!elector) metrics.reconcilerLeader.set(1);
  // A profile the Northbound contradicts programs nothing until it agrees again.
  const leading = (): boolean => (elector?.isLeader ?? true) && profile.mismatch === undefined;
  const reconciler = new Reconciler(
    view,
    gateway,
    nat,
    {
      intervalMs: config.reconcileIntervalMs,
      graceMs: config.natGraceMs,
      markRouted,
      onNatReconciled: (result) => {
        metrics.natReconciled.inc({ change: "written" }, result.written.length);
        metrics.natReconciled.inc({ change: "released" }, result.released.length);
        metrics.natReconciled.inc({ change: "conflict" }, result.conflicts.length);
        metrics.natReconciled.inc({ change: "claim-released" }, result.claimsReleased.length);
      },
      leading,
      ports,
      switches,
      networkModel: config.networkModel,
      ...(nodeSubnets ? { nodeSubnets } : {}),
      ...(topology ? { topology } : {}),
      ...(loadBalancers ? { loadBalancers } : {}),
      ...(gatewayRouters ? { gatewayRouters } : {}),
      claimsOnly,
    },
    log,
  );
  // Everything is programmed from the stored objects, by the Lease holder (ADR 0004).
  const programmer = new Programmer(
    view,
    {
      encap,
      gateway,
      nat,
      ports,
      switches,
      switchSettings,
      defaultSubnet: config.defaultSubnet,
      networkModel: config.networkModel,
      ...(nodeSubnets ? { nodeSubnets } : {}),
      ...(topology ? { topology } : {}),
      ...(loadBalancers ? { loadBalancers } : {}),
      ...(gatewayRouters ? { gatewayRouters } : {}),
      ...(marker ? { annotate: marker.annotate.bind(marker) } : {}),
      claimsOnly,
    },
    leading,
    log,
    (what, ok) => metrics.programmed.inc({ what, result: ok ? "ok" : "failed" }),
    // kubectl describe shows why an admitted object's network is not there yet.
    ({ object, what, error }) => {
      if (!events || !object || !isKind(object.kind)) return;
      const { group, version } = KIND_RESOURCES[object.kind];
      events.warn(
        { ...object, apiVersion: group ? `${group}/${version}` : version },
        "ProgrammingFailed",
        `ovn-admission could not program the ${what} of this ${object.kind} in OVN (retrying): ${error}`,
      );
    },
  );
  programmer.start();
  // After a restart, what was stored is put back; then every ten minutes, in case someone edited OVS by hand.
  const resync = (): void => {
    // Beside Kube-OVN, kube-ovn-daemon writes each node's encap IPs (its order is its own: ours would flap with it).
    if (!leading() || claimsOnly) return;
    void encap
      .resync()
      .catch((err: Error) => log.warn({ event: "encap-resync-failed", error: err.message }, "resync failed"));
  };
  void resyncWhenSynced?.then(resync);
  const resyncTimer = setInterval(resync, 600_000);
  resyncTimer.unref();
  northbound.on("transaction", ({ database, seconds, ok }) =>
    metrics.ovsdbTransactionDuration.observe({ database, result: ok ? "ok" : "error" }, seconds),
  );

  const stopLocal = async (): Promise<void> => {
    informers?.stop();
    programmer.stop();
    clearInterval(resyncTimer);
    reconciler.stop();
    marker?.close();
    await elector?.stop();
    encap.close();
    nodeDatabases.close();
    northbound.close();
    await localNorthbound?.stop();
  };
  /** A start-up step: when it fails, what was started is stopped and the error says what could not be done. */
  const step = async <T>(failure: string, work: () => Promise<T> | T, undo = stopLocal): Promise<T> => {
    try {
      return await work();
    } catch (err) {
      await undo();
      throw new StartupError(`${failure}: ${(err as Error).message}`);
    }
  };
  await step(`cannot reach OVN Northbound at ${remote}`, () =>
    northbound.connect({ timeoutMs: config.northboundConnectTimeoutMs }),
  );
  const mismatch = await step("cannot read who owns OVN Northbound's rows", () => profile.check());
  if (mismatch) {
    await stopLocal();
    throw new StartupError(mismatch);
  }
  log.info(
    { event: "northbound-profile", alongside: config.alongside ?? "none", remote },
    config.alongside
      ? `beside ${config.alongside}: claims only, on ${CLAIMS_ROUTER} and ${CLAIMS_SWITCH}`
      : "own control plane: the service programs what it admits",
  );
  // After a reconnect (a failover, or a Northbound put back from a backup) the rows are looked at again.
  northbound.on("state", (state) => {
    if (state !== "connected") return;
    void profile.check().then(
      (again) =>
        again && log.error({ event: "northbound-profile-mismatch", error: again }, "programming stopped"),
      (err: Error) =>
        log.warn({ event: "northbound-profile-unread", error: err.message }, "profile not checked"),
    );
  });
  if (localNorthbound) await ensureDevRouter(northbound, config.clusterRouter, log);
  await step("cannot make the claims router and switch in OVN Northbound", async () => {
    await nat.ensureClaimsRouter();
    await ports.start();
  });
  if (topology)
    await step(`cannot make the cluster topology (master-init: ${config.clusterRouter}, join)`, () =>
      topology.master(),
    );
  // Without a cluster the view is as synced as it gets: reconcile from it at once.
  reconciler.start(resyncWhenSynced ?? Promise.resolve());
  elector?.start();

  const clientCaFile = config.clientCaFile;
  const clientCa = clientCaFile
    ? await step(`--client-ca-file ${clientCaFile}`, () => {
        const ca = readFileSync(clientCaFile);
        createSecureContext({ ca });
        return ca;
      })
    : undefined;
  const readiness = (): Readiness => {
    const waitingFor: string[] = [];
    if (!view.synced) {
      const kinds = informers?.state.waitingFor() ?? [];
      waitingFor.push(`cluster view to sync${kinds.length ? ` (${kinds.join(", ")})` : ""}`);
    }
    if (northbound.state !== "connected") waitingFor.push(`OVN Northbound (${northbound.state})`);
    if (profile.mismatch) waitingFor.push(profile.mismatch);
    const leaseProblem = elector?.problem();
    if (leaseProblem) waitingFor.push(`the reconciler's Lease: ${leaseProblem}`);
    return { ready: waitingFor.length === 0, waitingFor };
  };
  const app = await buildApp({
    log,
    metrics,
    view,
    routes: parts.routes ?? ROUTES,
    handlers:
      parts.handlers ?? new IntentHandlers({ ...nat.intents, ...ports.intents, ...nodeSubnets?.intents }),
    settings: ruleSettings(config),
    policyLabel: config.policyLabel,
    deadlineMs: config.deadlineMs,
    failureModes: { mutate: config.mutateFailureMode, validate: config.validateFailureMode },
    bodyLimit: config.bodyLimit,
    keepAliveTimeoutMs: config.keepAliveTimeoutMs,
    https: {
      cert: certificate.cert,
      key: certificate.key,
      minVersion: "TLSv1.2",
      // Asked for, and checked per route: probes and metrics stay open to callers without one.
      ...(clientCa ? { ca: clientCa, requestCert: true, rejectUnauthorized: false } : {}),
    },
    requireClientCertificate: clientCa !== undefined,
    readiness,
  });
  // Probes and Prometheus on plain HTTP when asked: what a kubelet or scraper reaches without TLS.
  const probes =
    config.metricsPort === undefined
      ? undefined
      : (Fastify({
          loggerInstance: log,
          logController: new LogController({ disableRequestLogging: true }),
        } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance);
  if (probes) await probes.register(probeRoutes, { metrics, readiness });
  await step(`cannot listen on ${config.host}:${config.port}`, () =>
    app.listen({ host: config.host, port: config.port }),
  );
  if (probes)
    await step(
      `cannot listen on ${config.host}:${config.metricsPort} (--metrics-port)`,
      () => probes.listen({ host: config.host, port: config.metricsPort }),
      async () => {
        await app.close();
        await stopLocal();
      },
    );
  const stopReloading = reloadOnChange(
    app.server as unknown as TlsServer,
    servingFiles,
    config.certReloadMs,
    log,
    clientCa,
  );
  const { port } = app.server.address() as AddressInfo;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  const url = `https://${host}:${port}`;
  log.info(
    { event: "listening", url, caFile, certificate: certificate.fingerprint, validTo: certificate.validTo },
    caFile ? `listening on ${url}; try: curl --cacert ${caFile} ${url}/readyz` : `listening on ${url}`,
  );

  let closing: Promise<void> | undefined;
  const metricsUrl = probes ? `http://${host}:${(probes.server.address() as AddressInfo).port}` : undefined;
  return {
    url,
    port,
    metricsUrl,
    caFile,
    northbound,
    view,
    reconcile: () => reconciler.run(),
    close() {
      closing ??= (async () => {
        log.info({ event: "stopping" }, "stopping: no new requests, finishing those in flight");
        stopReloading();
        await selfManaged?.stop();
        await app.close();
        await probes?.close();
        await stopLocal();
        log.info({ event: "stopped" }, "stopped");
      })();
      return closing;
    },
  };
}
