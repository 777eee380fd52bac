/**
 * `cores > 1`: N processes (node:cluster) serving one gRPC port, each with its
 * own event loop and its own Cedar wasm instance, for a shared per-node
 * deployment where one process would be CPU-bound. The primary only
 * supervises: it forks the workers, restarts one that dies, and serves the
 * admin port for all of them (readiness = every worker has a policy set;
 * /metrics sums the workers' registries; /bundle lists each worker's version).
 *
 * On Linux the primary accepts connections and hands them to workers round
 * robin, so a worker is chosen per connection, not per request: Envoy opens
 * several connections to a cluster, which spreads the load; a single client
 * connection lands on one worker.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import client from 'prom-client';
import type { Config } from '../config/schema.js';
import { createLogger, flushLogger } from '../observability/logger.js';
import { AuthzMetrics } from '../observability/metrics.js';
import { AdminServer } from './admin-server.js';
import { startAuthzServer } from './authz-server.js';
import { installProcessFaultHandlers } from './process-faults.js';

/** A worker that dies is started again after this long (not at once: a crash loop must not spin a core). */
export const WORKER_RESTART_DELAY_MS = 1000;
const STATUS = 'authz:worker-status';
const SHUTDOWN = 'authz:shutdown';

interface WorkerStatus {
  type: typeof STATUS;
  pid: number;
  ready: boolean;
  version: string | null;
  policies: number;
  lastError: string | null;
}

export interface RunningCluster {
  adminPort: number;
  logger: Logger;
  /** Resolves once every worker reports a policy set (or rejects if one cannot start). */
  ready: Promise<void>;
  close(): Promise<void>;
}

export function isClusterWorker(): boolean {
  return cluster.isWorker;
}

/** Primary process: fork `config.cores` workers and serve the admin port. */
export async function startClusterPrimary(config: Config): Promise<RunningCluster> {
  const logger = createLogger({
    level: config.logLevel,
    destination: config.logDestination === 'stdout' ? 1 : config.logDestination,
  });
  const status = new Map<number, WorkerStatus>();
  let stopping = false;

  const fork = (slot: number): Worker => {
    const worker = cluster.fork({ AUTHZ_WORKER_SLOT: String(slot) });
    worker.on('message', (m: WorkerStatus) => {
      if (m?.type === STATUS) status.set(slot, m);
    });
    worker.on('exit', (code, signal) => {
      status.delete(slot);
      if (stopping) return;
      logger.error({ slot, code, signal }, 'authz worker exited; restarting it');
      setTimeout(() => {
        if (!stopping) fork(slot);
      }, WORKER_RESTART_DELAY_MS).unref();
    });
    return worker;
  };
  for (let slot = 0; slot < config.cores; slot++) fork(slot);

  const allReady = (): boolean => status.size === config.cores && [...status.values()].every((s) => s.ready);
  const aggregator = new client.AggregatorRegistry();
  const primaryMetrics = new AuthzMetrics(false);
  // The primary holds the admin port and supervises: it must outlive any bug a request reaches.
  const removeFaultHandlers = installProcessFaultHandlers(logger, (kind) => primaryMetrics.processFaults.inc({ kind }));
  const admin = new AdminServer({
    metrics: primaryMetrics,
    onError: (err, detail) => logger.error({ err, ...detail }, 'admin request failed'),
    isReady: allReady,
    readinessDetail: () => ({
      workers: config.cores,
      workers_ready: [...status.values()].filter((s) => s.ready).length,
    }),
  });
  admin.route('/metrics', async () => ({
    status: 200,
    body: await aggregator.clusterMetrics(),
    contentType: aggregator.contentType,
  }));
  admin.route('/bundle', async () => ({
    status: 200,
    body: {
      source: { kind: 'directory', path: config.policies },
      workers: [...status.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([slot, s]) => ({ slot, pid: s.pid, version: s.version, policies: s.policies, last_error: s.lastError })),
    },
  }));
  const adminPort = await admin.listen(config.admin.host, config.admin.port);
  logger.info(
    {
      cores: config.cores,
      admin: `${config.admin.host}:${adminPort}`,
      grpc: `${config.listen.host}:${config.listen.port}`,
    },
    'authz cluster started',
  );

  const ready = new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (allReady()) {
        clearInterval(poll);
        resolve();
      }
    }, 50);
    poll.unref();
  });

  return {
    adminPort,
    logger,
    ready,
    async close() {
      stopping = true;
      const exits = Object.values(cluster.workers ?? {}).map(
        (w) =>
          new Promise<void>((resolve) => {
            if (!w || w.isDead()) return resolve();
            w.once('exit', () => resolve());
            w.send({ type: SHUTDOWN });
            setTimeout(() => w.kill('SIGKILL'), 5000).unref();
          }),
      );
      await Promise.all(exits);
      await admin.close();
      removeFaultHandlers();
      await flushLogger(logger);
    },
  };
}

/** Worker process: the normal server without the admin port, reporting to the primary. */
export async function startClusterWorker(config: Config): Promise<void> {
  // Every line says which worker wrote it (workers share the destination).
  const logger = createLogger({
    level: config.logLevel,
    destination: config.logDestination === 'stdout' ? 1 : config.logDestination,
  }).child({ worker: Number(process.env.AUTHZ_WORKER_SLOT ?? 0) });
  const server = await startAuthzServer(config, { admin: false, logger });
  // prom-client answers the primary's metric requests from the registries set here.
  new client.AggregatorRegistry();
  client.AggregatorRegistry.setRegistries([server.metrics.registry]);
  const report = (): void => {
    const set = server.policySet.current;
    const s: WorkerStatus = {
      type: STATUS,
      pid: process.pid,
      ready: set !== null,
      version: set?.version ?? null,
      policies: set?.policySet.policies.size ?? 0,
      lastError: server.policySet.lastError?.message ?? null,
    };
    process.send?.(s);
  };
  server.policySet.observe({ onActivated: report, onRefused: report });
  report();
  // Several of the triggers below can fire (a signal, then the primary's disconnect): close once.
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void server.close().then(() => process.exit(0));
  };
  process.on('message', (m: { type?: string }) => {
    if (m?.type === SHUTDOWN) stop();
  });
  // The primary going away (killed) must not leave an orphan serving the port.
  process.on('disconnect', stop);
  // A signal sent to the whole process group (Ctrl-C in a terminal) reaches the workers too: without these, a worker would
  // die at once with the decision lines still in its log buffer (logger.ts); this way it closes and flushes them.
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
