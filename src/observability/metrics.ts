/**
 * Prometheus metrics. One registry per server instance (tests run several
 * servers in one process). Labels are bounded: decision, reason code, result,
 * version, rule name; never a path or a principal.
 */
import client from 'prom-client';

/** Buckets around the sub-millisecond budget, with a tail for stalls. */
export const CHECK_DURATION_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5];

export class AuthzMetrics {
  readonly registry = new client.Registry();
  readonly decisions = new client.Counter({
    name: 'authz_decisions_total',
    help: 'Decisions answered, by decision and reason code.',
    labelNames: ['decision', 'reason'] as const,
    registers: [this.registry],
  });
  readonly checkDuration = new client.Histogram({
    name: 'authz_check_duration_seconds',
    help: 'Time spent in the Check handler, from receipt of the decoded request to the answer.',
    buckets: CHECK_DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly bundleInfo = new client.Gauge({
    name: 'authz_bundle_info',
    help: 'The active policy set version (value 1).',
    labelNames: ['version'] as const,
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

  readonly cacheLookups = new client.Counter({
    name: 'authz_decision_cache_lookups_total',
    help: 'Decision cache lookups: hit, miss, or uncacheable (the slice reads a volatile field such as time).',
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

  constructor(collectDefaults = true) {
    if (collectDefaults) client.collectDefaultMetrics({ register: this.registry });
    for (const result of ['success', 'error']) this.bundleLoads.inc({ result }, 0);
    for (const result of ['hit', 'miss', 'uncacheable']) this.cacheLookups.inc({ result }, 0);
  }

  /** Report the decision cache's size at each scrape. */
  trackCacheSize(size: () => number): void {
    this.cacheSize = size;
  }

  setActiveVersion(version: string, policyCount: number): void {
    this.bundleInfo.reset();
    this.bundleInfo.set({ version }, 1);
    this.policyCount.set(policyCount);
  }
}
