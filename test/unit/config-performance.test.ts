import { describe, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import { loadConfig } from '../../src/config/load-config.js';
import { DEFAULT_DECISION_CACHE_ENTRIES, DEFAULT_DECISION_CACHE_TTL_MS, MAX_CORES } from '../../src/config/schema.js';

const load = (flags: Record<string, unknown>, env: Record<string, string> = {}) => loadConfig({ flags, env });

describe('cache and cores settings', () => {
  it('defaults', () => {
    const c = load({});
    expect(c.decisionCacheEntries).toBe(DEFAULT_DECISION_CACHE_ENTRIES);
    expect(c.decisionCacheTtl).toBe(DEFAULT_DECISION_CACHE_TTL_MS);
    expect(c.cores).toBe(1);
  });

  const accepted = [
    { name: 'entries from a flag', flags: { decisionCacheEntries: '5000' }, key: 'decisionCacheEntries', value: 5000 },
    {
      name: 'entries 0 turns the cache off',
      flags: { decisionCacheEntries: '0' },
      key: 'decisionCacheEntries',
      value: 0,
    },
    { name: 'ttl as a duration', flags: { decisionCacheTtl: '2m' }, key: 'decisionCacheTtl', value: 120_000 },
    { name: 'cores as a number', flags: { cores: '2' }, key: 'cores', value: 2 },
    { name: 'cores auto', flags: { cores: 'auto' }, key: 'cores', value: Math.min(MAX_CORES, availableParallelism()) },
  ] as const;
  for (const row of accepted) {
    it(row.name, () => expect(load(row.flags)[row.key]).toBe(row.value));
  }

  it('environment variables work too', () => {
    expect(load({}, { AUTHZ_DECISION_CACHE_ENTRIES: '7', AUTHZ_CORES: '3' })).toMatchObject({
      decisionCacheEntries: 7,
      cores: 3,
    });
  });

  const refused = [
    {
      name: 'entries not a number',
      flags: { decisionCacheEntries: 'lots' },
      error: /decisionCacheEntries: expected a whole number .* \(from --decision-cache-entries\)/,
    },
    { name: 'entries negative', flags: { decisionCacheEntries: '-1' }, error: /decisionCacheEntries/ },
    { name: 'entries with junk', flags: { decisionCacheEntries: '10k' }, error: /decisionCacheEntries/ },
    { name: 'ttl zero', flags: { decisionCacheTtl: '0s' }, error: /decisionCacheTtl: must be at least 1ms/ },
    { name: 'ttl nonsense', flags: { decisionCacheTtl: 'soon' }, error: /decisionCacheTtl: expected a duration/ },
    { name: 'cores zero', flags: { cores: '0' }, error: /cores: expected "auto" or a whole number from 1 to 64/ },
    { name: 'cores too many', flags: { cores: '65' }, error: /cores/ },
  ];
  for (const row of refused) {
    it(`refuses ${row.name}`, () => expect(() => load(row.flags)).toThrow(row.error));
  }
});
