/**
 * Composition root: builds the parts from a Config and starts them. Only
 * wiring lives here; every decision is made in the pipeline modules.
 */
import type { Logger } from 'pino';
import { ActivePolicySet } from '../bundle/active-policy-set.js';
import { filesToPolicySetSource, type BundleFileMap } from '../bundle/bundle-files.js';
import { directoryVersion, PolicyDirectoryWatcher } from '../bundle/policy-directory.js';
import type { Config } from '../config/schema.js';
import { DecisionLog } from '../observability/decision-log.js';
import { createLogger, flushLogger } from '../observability/logger.js';
import { AuthzMetrics } from '../observability/metrics.js';
import { EngineResultCache } from '../cache/decision-cache.js';
import type { EngineResult } from '../cedar/evaluate.js';
import { AdminServer } from './admin-server.js';
import { CheckHandler } from './check-handler.js';
import { GrpcServer } from './grpc-server.js';
import { grpcServerCredentials, tlsMode } from './tls.js';

export interface RunningServer {
  grpcPort: number;
  adminPort: number;
  policySet: ActivePolicySet;
  metrics: AuthzMetrics;
  logger: Logger;
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Serve the admin HTTP port (default true). Cluster workers leave it to the primary. */
  admin?: boolean;
}

export async function startAuthzServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  // Read certificates first: a bad path must stop start-up before anything listens.
  const credentials = grpcServerCredentials(config);
  const logger =
    options.logger ??
    createLogger({ level: config.logLevel, destination: config.logDestination === 'stdout' ? 1 : config.logDestination });
  const metrics = new AuthzMetrics();
  const policySet = new ActivePolicySet();
  const decisionLog = new DecisionLog(logger, config.decisionLogHeaders);
  const cache = config.decisionCacheEntries > 0 ? new EngineResultCache<EngineResult>(config.decisionCacheEntries, config.decisionCacheTtl) : undefined;
  if (cache) metrics.trackCacheSize(() => cache.size);
  const handler = new CheckHandler({ policySet, metrics, decisionLog, logger, cache });
  const grpcServer = new GrpcServer({ handler, isServing: () => policySet.current !== null, credentials });

  policySet.observe({
    onActivated: (set, previous, ms, steps) => {
      // Keys carry the version, so old entries could never answer; dropping them frees the memory now.
      cache?.clear();
      if (steps) metrics.activationLongestStep.set(steps.longestMs / 1000);
      metrics.bundleLoads.inc({ result: 'success' });
      metrics.setActiveVersion(set.version, set.policies.size);
      metrics.activationDuration.observe(ms / 1000);
      logger.info(
        {
          version: set.version,
          previous: previous?.version ?? null,
          policies: set.policies.size,
          compile_ms: Math.round(ms),
          preparsed_slices: set.slices.chunkCount,
          ...(steps ? { compile_steps: steps.count, longest_step_ms: Math.round(steps.longestMs * 10) / 10, longest_step_phase: steps.longestPhase } : {}),
        },
        'policy set activated',
      );
      if (!previous) grpcServer.notifyHealth();
    },
    onRefused: (error, version) => {
      metrics.bundleLoads.inc({ result: 'error' });
      logger.error({ version, error: error.message }, 'policy set refused; the previous set keeps serving');
    },
  });

  const loadFiles = async (files: BundleFileMap | Error): Promise<void> => {
    if (files instanceof Error) {
      policySet.refuse(files);
      return;
    }
    let source;
    try {
      source = filesToPolicySetSource(files, directoryVersion(files));
    } catch (err) {
      policySet.refuse(err as Error);
      return;
    }
    if (source.version === policySet.current?.version) return;
    // Compiled in a worker and in small steps: requests keep being answered by the current set meanwhile.
    await policySet.activate(source);
  };
  const watcher = new PolicyDirectoryWatcher(config.policies, loadFiles);
  await loadFiles(await watcher.start());

  const admin = new AdminServer({
    metrics,
    isReady: () => policySet.current !== null,
    readinessDetail: () => ({ version: policySet.current?.version ?? null }),
  });
  admin.route('/bundle', async () => {
    const set = policySet.current;
    return {
      status: 200,
      body: {
        version: set?.version ?? null,
        source: { kind: 'directory', path: config.policies },
        policies: set ? set.policies.size : 0,
        activated_at: set?.compiledAt.toISOString() ?? null,
        compiling: policySet.compiling,
        last_error: policySet.lastError,
      },
    };
  });

  const grpcPort = await grpcServer.bind(config.listen.host, config.listen.port);
  let adminPort = 0;
  if (options.admin !== false) {
    try {
      adminPort = await admin.listen(config.admin.host, config.admin.port);
    } catch (err) {
      await grpcServer.close(0);
      throw err;
    }
  }
  logger.info({ grpc: `${config.listen.host}:${grpcPort}`, admin: `${config.admin.host}:${adminPort}`, tls: tlsMode(config), policies: config.policies }, 'authz server listening');

  return {
    grpcPort,
    adminPort,
    policySet,
    metrics,
    logger,
    async close() {
      watcher.stop();
      await Promise.all([grpcServer.close(), options.admin !== false ? admin.close() : undefined]);
      await flushLogger(logger);
    },
  };
}
