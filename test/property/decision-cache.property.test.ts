/**
 * The decision cache never changes a decision: a stream of requests (drawn
 * from a small pool, so repeats hit the cache, with fields no policy reads
 * varying) and policy-set swaps is answered identically with and without the
 * cache. Two cached pipelines run side by side: one cleared on every swap (as
 * the server does) and one never cleared (so the version in the key alone must
 * keep old answers out).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authorizeInput } from '../../src/pipeline/authorize-input.js';
import { BoundedTtlCache, EngineResultCache } from '../../src/cache/decision-cache.js';
import { compileBundle, type ActiveBundle } from '../../src/bundle/active-bundle.js';
import type { EngineResult } from '../../src/cedar/evaluate.js';
import { checkRequestToInput } from '../../src/envoy/check-request.js';
import {
  policyFiles,
  requestSpec,
  specToCheckRequest,
  WORLD_ENTITIES,
  type RequestSpec,
} from '../support/generated-sets.js';

/**
 * A request step re-sends a pool request, maybe with its path or a header
 * changed: near-duplicates are what a wrong key would confuse.
 */
type Step =
  | { kind: 'request'; pick: number; noise: string; path?: RequestSpec['path']; headers?: RequestSpec['headers'] }
  | { kind: 'swap'; to: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 9,
    arbitrary: fc.record(
      {
        kind: fc.constant('request' as const),
        pick: fc.nat(),
        noise: fc.string({ maxLength: 4 }),
        path: requestSpec.map((r) => r.path),
        headers: requestSpec.map((r) => r.headers),
      },
      { requiredKeys: ['kind', 'pick', 'noise'] },
    ),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('swap' as const), to: fc.nat() }) },
);

describe('cached decisions equal uncached decisions', () => {
  it('over random request streams with swaps', () => {
    fc.assert(
      fc.property(
        fc.array(policyFiles, { minLength: 2, maxLength: 3 }),
        fc.array(requestSpec, { minLength: 1, maxLength: 4 }),
        fc.array(step, { minLength: 5, maxLength: 60 }),
        (versions, pool, steps) => {
          // The same texts under different versions must still never share entries.
          const sets: ActiveBundle[] = versions.map((files, i) =>
            compileBundle({ version: `v${i}`, policies: files, entities: WORLD_ENTITIES }),
          );
          // The server's cache (answers interned) cleared on swaps; a plain one never cleared.
          const clearedOnSwap = new EngineResultCache<EngineResult>(1000, 60_000);
          const neverCleared = new BoundedTtlCache<EngineResult>(1000, 60_000);
          let active = sets[0];
          let hits = 0;
          try {
            for (const s of steps) {
              if (s.kind === 'swap') {
                active = sets[s.to % sets.length];
                clearedOnSwap.clear();
                continue;
              }
              const base = pool[s.pick % pool.length];
              const spec: RequestSpec = {
                ...base,
                noise: s.noise,
                path: s.path ?? base.path,
                headers: s.headers ?? base.headers,
              };
              const res = checkRequestToInput(specToCheckRequest(spec));
              if (!res.ok) throw new Error(res.message);
              const plain = authorizeInput(res.input, active, 'id');
              const a = authorizeInput(res.input, active, 'id', { cache: clearedOnSwap });
              const b = authorizeInput(res.input, active, 'id', { cache: neverCleared });
              expect(a.decision).toEqual(plain.decision);
              expect(b.decision).toEqual(plain.decision);
              expect(a.engine?.errors).toEqual(plain.engine?.errors);
              if (a.cache === 'hit') hits++;
            }
          } finally {
            for (const set of sets) set.policySet.retire();
          }
          return hits >= 0;
        },
      ),
      // Enough runs to catch a key that drops one like/== outcome (a mutation of contextKey needed 100-300 runs to show).
      { numRuns: 150 },
    );
  }, 60_000);

  it('the cache is actually used: repeats of a cacheable request are hits', () => {
    const set = compileBundle({
      version: 'v',
      policies: [{ name: 'a.cedar', text: 'permit (principal, action, resource) when { context.path == "/a" };' }],
    });
    const cache = new BoundedTtlCache<EngineResult>(10, 60_000);
    const input = (noise: string) => {
      const res = checkRequestToInput(
        specToCheckRequest({
          principal: '',
          method: 'GET',
          network: false,
          host: 's0',
          path: '/a',
          headers: {},
          query: '',
          noise,
          timeSeconds: 1_780_000_000,
          ext: {},
        }),
      );
      if (!res.ok) throw new Error(res.message);
      return res.input;
    };
    expect(authorizeInput(input('one'), set, 'id', { cache }).cache).toBe('miss');
    // x-request-id and user-agent differ, but no policy reads them: same entry.
    expect(authorizeInput(input('two'), set, 'id', { cache }).cache).toBe('hit');
    expect(cache.size).toBe(1);
    set.policySet.retire();
  });

  it('a slice that reads the time is not cached', () => {
    const set = compileBundle({
      version: 'v',
      policies: [
        {
          name: 'a.cedar',
          text: 'permit (principal, action, resource) when { context.time < datetime("2030-01-01T00:00:00Z") };',
        },
      ],
    });
    const cache = new BoundedTtlCache<EngineResult>(10, 60_000);
    const res = checkRequestToInput(
      specToCheckRequest({
        principal: '',
        method: 'GET',
        network: false,
        host: 's0',
        path: '/a',
        headers: {},
        query: '',
        noise: '',
        timeSeconds: 1_780_000_000,
        ext: {},
      }),
    );
    if (!res.ok) throw new Error(res.message);
    expect(authorizeInput(res.input, set, 'id', { cache }).cache).toBe('uncacheable');
    expect(authorizeInput(res.input, set, 'id', { cache }).cache).toBe('uncacheable');
    expect(cache.size).toBe(0);
    set.policySet.retire();
  });
});
