/**
 * Composition root: builds the parts from a Config and starts them. Only
 * wiring lives here; every decision is made in the pipeline modules.
 */
import type { Logger } from 'pino';
import { ActivePolicySet } from '../bundle/active-policy-set.js';
import type { ActiveBundle } from '../bundle/active-bundle.js';
import { createBundleSource } from '../wiring/create-bundle-source.js';
import type { Config } from '../config/schema.js';
import { requestEnricherFromConfig } from '../wiring/context-from-config.js';
import { EventLoopLoad } from '../context/server-load.js';
import type { RequestEnricher } from '../context/request-enricher.js';
import { ContextMetrics } from '../observability/context-metrics.js';
import { DecisionLog } from '../observability/decision-log.js';
import { createLogger, flushLogger } from '../observability/logger.js';
import { AuthzMetrics } from '../observability/metrics.js';
import { EngineResultCache } from '../cache/decision-cache.js';
import type { EngineResult } from '../cedar/evaluate.js';
import { AdminServer } from './admin-server.js';
import { CheckHandler } from './check-handler.js';
import { GrpcServer } from './grpc-server.js';
import { installProcessFaultHandlers } from './process-faults.js';
import { bodyLimitsFromConfig, safetyOptionsFromConfig } from '../wiring/pipeline-settings.js';
import { grpcServerCredentials, http2TlsOptions, tlsMode } from './tls.js';
import { Http2GrpcServer } from './http2-grpc-server.js';
import { CallerAllowList, callerGate } from '../identity/allowed-callers.js';
import { redactedHeaderNames } from '../observability/redaction.js';
import { Tracing } from '../observability/tracing.js';
import { fleetShare, type FleetSize } from '../ratelimit/fleet-share.js';
import type { BundleSource } from '../bundle/sources/bundle-source.js';
import { StalePolicyGuard } from '../bundle/sources/stale-policy-guard.js';
import { HttpAuthzServer } from './http-authz-server.js';
import { addReflection } from './reflection.js';
import { listenError } from './listen-error.js';
import { formatHostPort } from '../config/host-port.js';
import { setDefaultEngine } from '../cedar/js/engine-choice.js';
import { onFallback } from '../cedar/js/fallback.js';
import { cedarWasmLoaded, loadCedarWasm } from '../cedar/cedar-wasm.js';

export interface RunningServer {
  grpcPort: number;
  /** Port of the HTTP ext_authz service; undefined unless httpListen is set. */
  httpPort?: number;
  adminPort: number;
  policySet: ActivePolicySet;
  /** The shadow version evaluated beside the active set (empty unless the store names one). */
  shadowVersion: ActivePolicySet;
  metrics: AuthzMetrics;
  logger: Logger;
  /** OpenTelemetry when configured (--otel-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT). */
  tracing?: Tracing;
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Serve the admin HTTP port (default true). Cluster workers leave it to the primary. */
  admin?: boolean;
  /** Called once the admin port listens, before the first policy load (0 when not served). */
  onAdminListening?: (port: number) => void;
}

export async function startAuthzServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  // Read certificates first: a bad path must stop start-up before anything listens.
  const credentials = config.transport === 'http2' ? undefined : grpcServerCredentials(config);
  const http2Tls = config.transport === 'http2' ? http2TlsOptions(config) : undefined;
  const logger =
    options.logger ??
    createLogger({
      level: config.logLevel,
      destination: config.logDestination === 'stdout' ? 1 : config.logDestination,
    });
  const metrics = new AuthzMetrics();
  // Sets this server compiles are decided by its engine (also the process default, for sets compiled elsewhere, e.g. shadow versions loaded by CLI paths); the JS engine tells each reason it leaves to wasm once.
  setDefaultEngine(config.engine);
  // The wasm engine preparses slices in this thread: load Cedar before serving, not during the first compile.
  if (config.engine === 'wasm') loadCedarWasm();
  onFallback((e) =>
    logger.warn({ reason: e.reason, policy: e.policyId, detail: e.detail }, 'JS engine left an evaluation to wasm'),
  );
  const policySet = new ActivePolicySet({ engine: config.engine });
  const decisionLog = new DecisionLog(logger, {
    withHeaders: config.decisionLogHeaders,
    redactHeaders: redactedHeaderNames(config),
    maxString: config.decisionLogMaxString,
    trustedHops: config.trustedHops,
  });
  const load = new EventLoopLoad(config.loadWindow);
  const contextMetrics = new ContextMetrics(metrics.registry, load);
  let enricher: RequestEnricher;
  try {
    enricher = await requestEnricherFromConfig(config, load, {
      onResult: (result) => contextMetrics.jwt.inc({ result }),
      onRefreshError: (issuer, error) =>
        logger.warn({ issuer, error: error.message }, 'JWKS refresh failed; verifying with the last keys fetched'),
    });
    await enricher.start();
  } catch (err) {
    load.stop();
    throw err;
  }
  // The shadow version is named in the bundle store's pointer (S3 source); the directory source never sets one.
  const shadowVersion = new ActivePolicySet({ engine: config.engine });
  const cache =
    config.decisionCacheEntries > 0
      ? new EngineResultCache<EngineResult>(config.decisionCacheEntries, config.decisionCacheTtl)
      : undefined;
  if (cache) metrics.trackCacheSize(() => cache.size);
  const bodyLimits = bodyLimitsFromConfig(config);
  // The source is built below; the guard reads its clock through this.
  let source: BundleSource | undefined;
  const staleGuard =
    config.maxPolicyAge !== undefined
      ? new StalePolicyGuard(
          config.maxPolicyAge,
          () => source?.confirmedAt?.(),
          (stale) => {
            const version = policySet.current?.version ?? null;
            if (stale)
              logger.error(
                { version, max_policy_age_ms: config.maxPolicyAge },
                'policy version not confirmed with the store within --max-policy-age; not ready, answering by the fail mode',
              );
            else logger.info({ version }, 'policy version confirmed with the store again; ready');
            grpcServer.notifyHealth();
          },
        )
      : undefined;
  const isReady = (): boolean => policySet.current !== null && !staleGuard?.stale;
  const tracing = Tracing.fromOptions({ endpoint: config.otelEndpoint });
  // Rate limits are fleet-wide; with --notify the heartbeat says how many servers share them (1 until it does).
  let fleetServers = 1;
  const fleet: FleetSize = { servers: () => fleetServers };
  const onFleetSize = (n: number): void => {
    if (n === fleetServers) return;
    logger.info({ servers: n, previous: fleetServers }, 'fleet size changed; rate limit shares recomputed');
    fleetServers = n;
  };
  const handler = new CheckHandler({
    policySet,
    metrics,
    decisionLog,
    logger,
    enricher,
    safety: safetyOptionsFromConfig(config),
    shadowVersion,
    cache,
    staleGuard,
    tracing,
    fleet,
    bodyLimits,
  });
  const serverOptions = {
    handler,
    isServing: isReady,
    refuseCaller: refuseCallerFor(config, metrics, logger),
    transport: config,
    onCallDropped: (cause: 'memory' | 'receive_timeout') => metrics.grpcCallsDropped.inc({ cause }),
  };
  // One handler, two possible gRPC servers (--transport): the pipeline is the same.
  const grpcServer =
    config.transport === 'http2'
      ? new Http2GrpcServer({ ...serverOptions, tls: http2Tls, reflection: config.grpcReflection })
      : new GrpcServer({ ...serverOptions, credentials, onTransportWarning: (message) => logger.error(message) });
  metrics.trackPendingRequestBytes(() => grpcServer.pending.bytes);
  if (config.grpcReflection && grpcServer instanceof GrpcServer) addReflection(grpcServer.server);

  policySet.observe({
    onActivated: (set, previous, ms, steps) => {
      // Keys carry the version, so old entries could never answer; dropping them frees the memory now.
      cache?.clear();
      if (steps) metrics.activationLongestStep.set(steps.longestMs / 1000);
      metrics.bundleLoads.inc({ result: 'success' });
      metrics.setActiveVersion(set.version, set.policySet.policies.size, set.policySet.engine);
      metrics.activationDuration.observe(ms / 1000);
      logger.info(
        {
          version: set.version,
          previous: previous?.version ?? null,
          policies: set.policySet.policies.size,
          compile_ms: Math.round(ms),
          preparsed_slices: set.policySet.slices.chunkCount,
          engine: set.policySet.engine,
          wasm_loaded: cedarWasmLoaded(),
          ...(set.policySet.js && set.policySet.js.unsupported.size > 0
            ? { engine_wasm_policies: [...set.policySet.js.unsupported].map(([id, why]) => `${id}: ${why}`) }
            : {}),
          ...(steps
            ? {
                compile_steps: steps.count,
                longest_step_ms: Math.round(steps.longestMs * 10) / 10,
                longest_step_phase: steps.longestPhase,
              }
            : {}),
        },
        'policy set activated',
      );
      tracing?.recordActivation(set.version, previous?.version ?? null, set.policySet.policies.size, ms);
      if (!previous) grpcServer.notifyHealth();
    },
    onRefused: (error, version) => {
      tracing?.recordRefusedActivation(version ?? null, error.message);
      metrics.bundleLoads.inc({ result: 'error' });
      const serving = policySet.current;
      logger.error(
        { version, error: error.message, serving: serving?.version ?? null },
        serving
          ? 'policy set refused; the previous set keeps serving'
          : 'policy set refused; no policy set is serving, so every check is denied 503 (no_policy_set) until one compiles',
      );
    },
  });

  policySet.observe({
    onActivated: (set, previous) => {
      const from = previous?.settings;
      const to = set.settings;
      if (from && (from.mode !== to.mode || from.enforcement !== to.enforcement)) {
        logger.warn(
          {
            version: set.version,
            mode: to.mode,
            previous_mode: from.mode,
            enforcement: to.enforcement,
            previous_enforcement: from.enforcement,
          },
          'bundle safety settings changed',
        );
      }
    },
  });

  // The policy directory, or the S3 store when bucket and bundle are set.
  source = await createBundleSource(config, { policySet, metrics, logger, shadowVersion, isReady, onFleetSize });
  const started = source;

  const admin = new AdminServer({
    metrics,
    onError: (err, detail) => {
      metrics.processFaults.inc({ kind: 'admin_request' });
      logger.error({ err, ...detail }, 'admin request failed');
    },
    isReady,
    readinessDetail: () => ({
      version: policySet.current?.version ?? null,
      ...(staleGuard ? { policy_age: staleGuard.describe() } : {}),
    }),
  });
  admin.route('/bundle', async () => {
    const set = policySet.current;
    return {
      status: 200,
      body: {
        version: set?.version ?? null,
        policies: set ? set.policySet.policies.size : 0,
        activated_at: set?.policySet.compiledAt.toISOString() ?? null,
        compiling: policySet.compiling,
        last_error: policySet.lastError,
        ...started.describe(),
        ...(staleGuard ? { policy_age: staleGuard.describe() } : {}),
        engine: set?.policySet.engine ?? config.engine,
        // Whether this (the serving) thread has loaded Cedar's wasm: with the JS engine, only a slice left to wasm or a wasm shadow evaluation loads it.
        wasm_loaded: cedarWasmLoaded(),
        ...(set?.policySet.js && set.policySet.js.unsupported.size > 0
          ? { engine_fallback_policies: Object.fromEntries(set.policySet.js.unsupported) }
          : {}),
        timezone: set?.timeZone.name ?? null,
        lists: set?.ipLists.summary() ?? [],
      },
    };
  });

  admin.route('/safety', async () => ({
    status: 200,
    body: safetyStatus(config, policySet.current, shadowVersion.current, handler, fleet.servers()),
  }));

  const httpAuthz = config.httpListen
    ? new HttpAuthzServer(handler, { pathPrefix: config.httpPathPrefix, identityHeader: config.httpIdentityHeader })
    : undefined;
  let grpcPort: number;
  let httpPort: number | undefined;
  let adminPort = 0;
  const serveAdmin = options.admin !== false; // cluster workers leave the admin port to the primary
  try {
    // The admin port listens before the first policy load: /healthz answers from
    // process start, so a slow first S3 fetch never fails a liveness probe, and
    // /readyz says 503 until a set is active. Cluster workers leave it to the primary.
    if (serveAdmin) {
      adminPort = await admin.listen(config.admin.host, config.admin.port).catch((err: unknown) => {
        throw listenError('admin HTTP', formatHostPort(config.admin), err);
      });
    }
    options.onAdminListening?.(adminPort);
    await started.start();
    staleGuard?.start();
    load.start();
    grpcPort = await grpcServer.bind(config.listen.host, config.listen.port).catch((err: unknown) => {
      throw listenError('gRPC', formatHostPort(config.listen), err);
    });
    if (httpAuthz && config.httpListen) {
      httpPort = await httpAuthz.listen(config.httpListen.host, config.httpListen.port).catch((err: unknown) => {
        throw listenError('HTTP ext_authz', formatHostPort(config.httpListen!), err);
      });
    }
  } catch (err) {
    staleGuard?.stop();
    await Promise.all([
      started.stop(),
      grpcServer.close(0),
      httpAuthz?.close(),
      serveAdmin ? admin.close() : undefined,
    ]);
    enricher.stop();
    load.stop();
    await tracing?.shutdown();
    throw err;
  }
  const removeFaultHandlers = installProcessFaultHandlers(logger, (kind) => metrics.processFaults.inc({ kind }));
  logger.info(
    {
      grpc: `${config.listen.host}:${grpcPort}`,
      ...(config.httpListen ? { http: `${config.httpListen.host}:${httpPort}` } : {}),
      admin: `${config.admin.host}:${adminPort}`,
      tls: tlsMode(config),
      transport: config.transport,
      source: started.describe().source,
    },
    'authz server listening',
  );

  return {
    grpcPort,
    httpPort,
    adminPort,
    policySet,
    shadowVersion,
    metrics,
    logger,
    tracing,
    async close() {
      staleGuard?.stop();
      await started.stop();
      enricher.stop();
      load.stop();
      await Promise.all([grpcServer.close(), httpAuthz?.close(), serveAdmin ? admin.close() : undefined]);
      removeFaultHandlers();
      // Spans still buffered are sent (bounded by OTEL_BSP_EXPORT_TIMEOUT) before the process goes.
      await tracing
        ?.shutdown()
        .catch((err: unknown) => logger.warn({ error: (err as Error).message }, 'could not export the last traces'));
      await flushLogger(logger);
    },
  };
}

/** `--allowed-callers`: refused calls are counted, and logged once per identity. */
function refuseCallerFor(config: Config, metrics: AuthzMetrics, logger: Logger) {
  if (config.allowedCallers.length === 0) return undefined;
  return callerGate(new CallerAllowList(config.allowedCallers), {
    onRefused: (verdict, firstTime) => {
      metrics.callersRefused.inc({ reason: verdict.id ? 'not_allowed' : 'no_identity' });
      logger[firstTime ? 'warn' : 'debug'](
        { caller: verdict.id ?? null, reason: verdict.message },
        'Check call refused: caller not in --allowed-callers (UNAUTHENTICATED)',
      );
    },
  });
}

/** What an operator checks during an incident: which controls are in force on this server right now. */
function safetyStatus(
  config: Config,
  set: ActiveBundle | null,
  shadow: ActiveBundle | null,
  handler: CheckHandler,
  servers: number,
): Record<string, unknown> {
  const settings = set?.settings;
  return {
    version: set?.version ?? null,
    mode: settings?.mode ?? null,
    enforcement: config.dryRun ? 'dry-run (--dry-run)' : (settings?.enforcement ?? null),
    fail_mode: config.failMode,
    decision_timeout_ms: config.decisionTimeout,
    allowed_callers: config.allowedCallers,
    rate_limits: (settings?.rateLimits ?? []).map((r) => {
      const rate = settings!.mode === 'high-alert' ? (r['high-alert'] ?? r.normal) : r.normal;
      const share = fleetShare(rate, servers);
      return {
        name: r.name,
        key: r.key,
        match: r.match,
        requests_per_second: rate.requestsPerSecond,
        burst: rate.burst,
        share: { servers, requests_per_second: share.requestsPerSecond, burst: share.burst },
      };
    }),
    rate_limiting: settings?.rateLimiting ?? 'server',
    rate_limit_keys: handler.rateLimitKeys,
    shadow: {
      evaluation: config.shadowEvaluation,
      sample_rate: config.shadowSampleRate,
      policies: set ? [...set.policySet.policies.values()].filter((p) => p.annotations.shadow).map((p) => p.id) : [],
      version: shadow?.version ?? null,
    },
  };
}
