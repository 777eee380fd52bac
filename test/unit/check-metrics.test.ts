import { describe, expect, it } from 'vitest';
import { AuthzMetrics, CHECK_DURATION_BUCKETS } from '../../src/observability/metrics.js';

/** The value of one exposition line, e.g. `authz_decisions_total{decision="allow",reason="allowed"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('Check metrics gathered between scrapes', () => {
  it('reads at a scrape as if every check had been counted and observed at once', async () => {
    const metrics = new AuthzMetrics(false);
    metrics.recordCheck('allow', 'allowed', 0.00004, 'hit');
    metrics.recordCheck('allow', 'allowed', 0.0003, 'hit');
    metrics.recordCheck('deny', 'no_permit', 0.002, 'miss');
    metrics.recordCheck('deny', 'malformed_request', 7, undefined);
    const text = await metrics.registry.metrics();
    expect(sample(text, 'authz_decisions_total{decision="allow",reason="allowed"}')).toBe(2);
    expect(sample(text, 'authz_decisions_total{decision="deny",reason="no_permit"}')).toBe(1);
    expect(sample(text, 'authz_decisions_total{decision="deny",reason="malformed_request"}')).toBe(1);
    expect(sample(text, 'authz_decision_cache_lookups_total{result="hit"}')).toBe(2);
    expect(sample(text, 'authz_decision_cache_lookups_total{result="miss"}')).toBe(1);
    expect(sample(text, 'authz_decision_cache_lookups_total{result="uncacheable"}')).toBe(0);
    // Cumulative buckets: 40 µs is in every bucket, 300 µs from 0.0005 on, 2 ms from 0.0025 on, 7 s only in +Inf.
    const le = (bound: number | string) => sample(text, `authz_check_duration_seconds_bucket{le="${bound}"}`);
    expect(le(0.00005)).toBe(1);
    expect(le(0.00025)).toBe(1);
    expect(le(0.0005)).toBe(2);
    expect(le(0.001)).toBe(2);
    expect(le(0.0025)).toBe(3);
    expect(le(CHECK_DURATION_BUCKETS[CHECK_DURATION_BUCKETS.length - 1])).toBe(3);
    expect(le('+Inf')).toBe(4);
    expect(sample(text, 'authz_check_duration_seconds_count')).toBe(4);
    expect(sample(text, 'authz_check_duration_seconds_sum')).toBeCloseTo(7.00234, 9);
  });

  it('adds what came after a scrape to what the scrape saw, and a second scrape alone changes nothing', async () => {
    const metrics = new AuthzMetrics(false);
    metrics.recordCheck('allow', 'allowed', 0.0001, 'hit');
    await metrics.registry.metrics();
    metrics.recordCheck('allow', 'allowed', 0.0001, 'hit');
    await metrics.registry.metrics();
    const text = await metrics.registry.metrics();
    expect(sample(text, 'authz_decisions_total{decision="allow",reason="allowed"}')).toBe(2);
    expect(sample(text, 'authz_decision_cache_lookups_total{result="hit"}')).toBe(2);
    expect(sample(text, 'authz_check_duration_seconds_count')).toBe(2);
    expect(sample(text, 'authz_check_duration_seconds_bucket{le="0.0001"}')).toBe(2);
    // The JSON form (what cluster workers send the primary) sees the same values.
    const json = await metrics.registry.getMetricsAsJSON();
    const decisions = json.find((m) => m.name === 'authz_decisions_total')!;
    expect(decisions.values).toEqual([{ labels: { decision: 'allow', reason: 'allowed' }, value: 2 }]);
  });

  it('starts with the histogram at zero, as before any check', async () => {
    const text = await new AuthzMetrics(false).registry.metrics();
    expect(sample(text, 'authz_check_duration_seconds_count')).toBe(0);
    expect(sample(text, 'authz_check_duration_seconds_bucket{le="+Inf"}')).toBe(0);
  });
});
