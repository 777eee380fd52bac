/**
 * Prometheus metrics. One registry per server instance (tests run several
 * servers in one process). Labels are bounded: decision, reason code, result,
 * version, rule name; never a path or a principal.
 */
import client from 'prom-client';
import { fallbackCounts } from '../cedar/js/fallback.js';
import { droppedLogLines } from './logger.js';

/** Buckets around the sub-millisecond budget, with a tail for stalls. */
export const CHECK_DURATION_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5];

/**
 * Counts by two labels gathered between scrapes, added to their prom-client
 * counter when it is collected. Counting costs two map reads of constant
 * strings and an increment, where prom-client hashes its labels object on
 * every `inc`.
 */
class PendingCounts {
  private readonly byFirst = new Map<string, Map<string, { n: number }>>();

  add(first: string, second: string): void {
    let inner = this.byFirst.get(first);
    if (inner === undefined) this.byFirst.set(first, (inner = new Map()));
    const count = inner.get(second);
    if (count === undefined) inner.set(second, { n: 1 });
    else count.n++;
  }

  /** Hands over the counts gathered since the last drain, and forgets them. */
  drain(into: (first: string, second: string, n: number) => void): void {
    for (const [first, inner] of this.byFirst)
      for (const [second, count] of inner)
        if (count.n > 0) {
          into(first, second, count.n);
          count.n = 0;
        }
  }
}

/** prom-client's state of an unlabelled histogram (bucket counts not yet cumulative, as its `zero` creates it). */
interface HistogramState {
  hashMap: Record<string, { bucketValues: Record<number, number>; sum: number; count: number } | undefined>;
}

/**
 * Observations of the check histogram gathered between scrapes: a count per
 * bucket, the sum and the count, added to the prom-client histogram when it
 * is collected (one observe cost a closure and a labels hash per check).
 */
class PendingObservations {
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    // Past the last bound only the count (le="+Inf") and the sum grow, as in prom-client.
    if (i < bounds.length) this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  /** Adds what was gathered to `histogram`'s own values; false when prom-client keeps them in another shape. */
  drainInto(histogram: client.Histogram): boolean {
    const state = histogram as unknown as HistogramState;
    if (!state.hashMap?.['']) histogram.zero({});
    const values = state.hashMap?.[''];
    if (values === undefined || typeof values.bucketValues !== 'object') return false;
    for (let i = 0; i < this.bounds.length; i++) {
      values.bucketValues[this.bounds[i]] = (values.bucketValues[this.bounds[i]] ?? 0) + this.counts[i];
      this.counts[i] = 0;
    }
    values.sum += this.sum;
    values.count += this.count;
    this.sum = 0;
    this.count = 0;
    return true;
  }
}

export class AuthzMetrics {
  readonly registry = new client.Registry();
  private readonly pendingDecisions = new PendingCounts();
  private readonly pendingCacheLookups = new PendingCounts();
  private readonly pendingDurations = new PendingObservations(CHECK_DURATION_BUCKETS);
  /** Whether durations are gathered between scrapes (prom-client's histogram state has the shape drainInto knows). */
  private gatherDurations = true;
  readonly decisions = new client.Counter({
    name: 'authz_decisions_total',
    help: 'Decisions answered, by decision and reason code.',
    labelNames: ['decision', 'reason'] as const,
    registers: [this.registry],
    collect: (): void =>
      this.pendingDecisions.drain((decision, reason, n) => this.decisions.inc({ decision, reason }, n)),
  });
  readonly checkDuration: client.Histogram = new client.Histogram({
    name: 'authz_check_duration_seconds',
    help: 'Time spent in the Check handler, from receipt of the decoded request to the answer.',
    buckets: CHECK_DURATION_BUCKETS,
    registers: [this.registry],
    collect: (): void => {
      if (this.gatherDurations && !this.pendingDurations.drainInto(this.checkDuration)) this.gatherDurations = false;
    },
  });
  readonly bundleInfo = new client.Gauge({
    name: 'authz_bundle_info',
    help: 'The active policy set version and the engine deciding it, js or wasm (value 1).',
    labelNames: ['version', 'engine'] as const,
    registers: [this.registry],
  });
  readonly bundleLoads = new client.Counter({
    name: 'authz_bundle_loads_total',
    help: 'Policy set loads, by result.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly policyCount = new client.Gauge({
    name: 'authz_policies',
    help: 'Number of policies in the active set.',
    registers: [this.registry],
    // With --cores, every worker holds the same set: the cluster's figure is one worker's, not the sum.
    aggregator: 'max',
  });
  readonly activationDuration = new client.Histogram({
    name: 'authz_bundle_activation_duration_seconds',
    help: 'Time to compile and swap in a policy set.',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly shadowMismatches = new client.Counter({
    name: 'authz_shadow_mismatches_total',
    help: 'Requests a shadow (never enforced) evaluation decided differently: source "policies" for @shadow policies in the active version, "version" for the shadow version named in the store.',
    labelNames: ['source', 'version'] as const,
    registers: [this.registry],
  });
  readonly shadowVersionInfo = new client.Gauge({
    name: 'authz_shadow_version_info',
    help: 'The shadow version named in the bundle pointer and loaded (value 1); absent when there is none.',
    labelNames: ['version'] as const,
    registers: [this.registry],
  });
  readonly shadowEvaluations = new client.Counter({
    name: 'authz_shadow_evaluations_total',
    help: 'Shadow evaluations, by source and result (match, mismatch, error).',
    labelNames: ['source', 'result'] as const,
    registers: [this.registry],
  });
  readonly shadowSkipped = new client.Counter({
    name: 'authz_shadow_skipped_total',
    help: 'Shadow evaluations dropped because too many were already waiting (the server is saturated).',
    registers: [this.registry],
  });
  readonly rateLimited = new client.Counter({
    name: 'authz_ratelimited_total',
    help: 'Requests refused with 429 by a bundle.yaml rate limit rule.',
    labelNames: ['rule'] as const,
    registers: [this.registry],
  });
  readonly rateLimitEvictions = new client.Counter({
    name: 'authz_ratelimit_evictions_total',
    help: 'Rate limit buckets dropped before they were idle because the key store was full (raise --rate-limit-max-keys).',
    registers: [this.registry],
  });
  readonly callersRefused = new client.Counter({
    name: 'authz_callers_refused_total',
    help: 'Check calls refused with UNAUTHENTICATED by --allowed-callers (reason: no_identity or not_allowed).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly bundleLastSync = new client.Gauge({
    name: 'authz_bundle_last_sync_timestamp_seconds',
    help: 'Unix time of the last poll that reached the bundle store (the pointer answered 200, 304 or 404). Alert on time() minus this.',
    registers: [this.registry],
  });
  readonly bundleDownloadDuration = new client.Histogram({
    name: 'authz_bundle_download_duration_seconds',
    help: 'Time to download a bundle tarball (and its signature) from the store.',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly bundleStoreErrors = new client.Counter({
    name: 'authz_bundle_store_errors_total',
    help: 'Polls of the bundle store that failed (unreachable, timed out, access denied); the active set keeps serving.',
    registers: [this.registry],
  });
  readonly cacheLookups = new client.Counter({
    name: 'authz_decision_cache_lookups_total',
    help: 'Decision cache lookups: hit, miss, or uncacheable (every policy of the slice reads a volatile field such as time or load; a slice mixing both caches its stable policies).',
    labelNames: ['result'] as const,
    registers: [this.registry],
    collect: (): void => this.pendingCacheLookups.drain((result, _, n) => this.cacheLookups.inc({ result }, n)),
  });
  readonly pushMessages = new client.Counter({
    name: 'authz_push_messages_total',
    help: 'Pointer messages received over NATS, by result: hint (the store is read at once) or invalid (unreadable, or for another store).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  private cacheSize: () => number = () => 0;
  readonly cacheEntries: client.Gauge = new client.Gauge({
    name: 'authz_decision_cache_entries',
    help: 'Decisions held in the cache.',
    registers: [this.registry],
    collect: (): void => this.cacheEntries.set(this.cacheSize()),
  });
  readonly activationLongestStep = new client.Gauge({
    name: 'authz_bundle_activation_longest_step_seconds',
    help: 'Longest the event loop was held by one step of the last policy-set compile (budget: 10 ms).',
    registers: [this.registry],
    aggregator: 'max',
  });

  readonly grpcCallsDropped = new client.Counter({
    name: 'authz_grpc_calls_dropped_total',
    help: 'gRPC calls reset before their request arrived: cause "memory" (half-received messages passed --max-pending-request-bytes, the largest was dropped) or "receive_timeout".',
    labelNames: ['cause'] as const,
    registers: [this.registry],
  });
  private logLinesDroppedSeen = 0;
  readonly logLinesDropped = new client.Counter({
    name: 'authz_log_lines_dropped_total',
    help: 'Log lines (decision lines included) dropped because the log destination stopped taking them and 64 MiB were held for it.',
    registers: [this.registry],
    collect: (): void => {
      const now = droppedLogLines();
      if (now > this.logLinesDroppedSeen) this.logLinesDropped.inc(now - this.logLinesDroppedSeen);
      this.logLinesDroppedSeen = now;
    },
  });
  readonly processFaults = new client.Counter({
    name: 'authz_process_faults_total',
    help: 'Errors no handler caught (kind: uncaught_exception, unhandled_rejection, admin_request); the process logged them and kept serving.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  constructor(collectDefaults = true) {
    if (collectDefaults) client.collectDefaultMetrics({ register: this.registry });
    // A histogram whose state is not in the shape drainInto knows (another prom-client) is observed directly.
    if (!this.pendingDurations.drainInto(this.checkDuration)) this.gatherDurations = false;
    for (const result of ['success', 'error']) this.bundleLoads.inc({ result }, 0);
    for (const result of ['hit', 'miss', 'uncacheable']) this.cacheLookups.inc({ result }, 0);
    for (const cause of ['memory', 'receive_timeout']) this.grpcCallsDropped.inc({ cause }, 0);
    for (const kind of ['uncaught_exception', 'unhandled_rejection', 'admin_request'])
      this.processFaults.inc({ kind }, 0);
  }

  /**
   * One answered Check: authz_decisions_total, authz_check_duration_seconds and
   * (with a cache) authz_decision_cache_lookups_total. Gathered here and added
   * to the prom-client metrics when they are collected (a scrape, a cluster
   * aggregation, a test's `get()`), so they read the same at any scrape.
   */
  recordCheck(decision: string, reason: string, seconds: number, cache: string | undefined): void {
    this.pendingDecisions.add(decision, reason);
    if (this.gatherDurations) this.pendingDurations.observe(seconds);
    else this.checkDuration.observe(seconds);
    if (cache !== undefined) this.pendingCacheLookups.add(cache, '');
  }

  /** Report the decision cache's size at each scrape. */
  trackCacheSize(size: () => number): void {
    this.cacheSize = size;
  }

  /** Report the number of live rate limit buckets at scrape time. */
  trackRateLimitKeys(size: () => number): void {
    new client.Gauge({
      name: 'authz_ratelimit_keys',
      help: 'Rate limit buckets held in memory (idle ones expire).',
      registers: [this.registry],
      collect() {
        this.set(size());
      },
    });
  }

  /** Report the half-received request bytes held at scrape time. */
  trackPendingRequestBytes(bytes: () => number): void {
    new client.Gauge({
      name: 'authz_grpc_pending_request_bytes',
      help: 'Bytes of request messages received but not yet complete, over all gRPC calls (bounded by --max-pending-request-bytes).',
      registers: [this.registry],
      collect() {
        this.set(bytes());
      },
    });
  }

  /** The push channel (NATS), reported at scrape time; only registered when `notify` is set. */
  trackPush(state: () => { connected: boolean; lastMessageAt: Date | undefined }): void {
    new client.Gauge({
      name: 'authz_push_connected',
      help: 'Whether the NATS push channel is connected (1) or not (0); servers keep polling the store either way.',
      registers: [this.registry],
      aggregator: 'min',
      collect() {
        this.set(state().connected ? 1 : 0);
      },
    });
    new client.Gauge({
      name: 'authz_push_last_message_age_seconds',
      help: 'Seconds since the last pointer message arrived over NATS (-1: none yet). Messages come only on changes, so age alone is no alarm.',
      registers: [this.registry],
      aggregator: 'min',
      collect() {
        const at = state().lastMessageAt;
        this.set(at ? (Date.now() - at.getTime()) / 1000 : -1);
      },
    });
  }

  readonly engineFallbacks = new client.Counter({
    name: 'authz_engine_fallback_total',
    help: 'Evaluations the JS engine left to wasm, by reason: unsupported_policy (a policy of the slice uses what it does not compile), request_data (request data it does not read exactly).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
    collect() {
      this.reset();
      for (const [reason, n] of fallbackCounts()) this.inc({ reason }, n);
    },
  });

  setActiveVersion(version: string, policyCount: number, engine = 'wasm'): void {
    this.bundleInfo.reset();
    this.bundleInfo.set({ version, engine }, 1);
    this.policyCount.set(policyCount);
  }
}
