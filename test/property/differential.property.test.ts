/**
 * The engine (slicing, projection, decision cache) against plain Cedar on the
 * whole input, over random policy sets, entity graphs, optional schemas and
 * requests (test/support/differential.ts). A fixed seed keeps CI repeatable;
 * `npm run fuzz -- --cases N --seed S` runs the same check longer.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fallbackCounts, resetFallbacks } from '../../src/cedar/js/fallback.js';
import { describeScenario, differentialStats, enginesFor, runScenario, scenario } from '../support/differential.js';

/** Requests per generated policy set: compiling a set costs more than deciding a request. */
const REQUESTS_PER_SCENARIO = 50;
const CASES = Number(process.env.DIFF_CASES ?? 20_000);
const SEED = 20261130;

describe('the engine answers exactly as plain Cedar', () => {
  it(`${CASES} random cases (seed ${SEED}): same decisions, determining and erroring policies, cached or not`, () => {
    let decided = 0;
    let n = 0;
    resetFallbacks();
    fc.assert(
      fc.property(scenario(REQUESTS_PER_SCENARIO), (s) => {
        const d = runScenario(s, enginesFor(n++));
        decided += s.requests.length;
        if (d.length > 0) throw new Error(`engine and plain Cedar disagree:\n${describeScenario(s, d)}`);
      }),
      { numRuns: CASES / REQUESTS_PER_SCENARIO, seed: SEED, endOnFailure: true },
    );
    expect(decided).toBe(CASES);
    // Slices with stable and volatile (context.load, context.time) policies were decided from a cached part.
    expect(differentialStats.splitSliceHits).toBeGreaterThan(0);
    // Requests were also decided with the set's @shadow policies included, against plain Cedar on all of them.
    expect(differentialStats.shadowCases).toBeGreaterThan(0);
    // What the JS engine left to wasm (checked above like the rest, but it should be nothing).
    console.log(`differential: JS engine fallbacks to wasm: ${JSON.stringify(Object.fromEntries(fallbackCounts()))}`);
  }, 900_000);
});
