/**
 * The differential check of test/property/differential.property.test.ts, for
 * as long as you like (before releases):
 *
 *   npm run fuzz -- --cases 1000000 --seed 42
 *
 * Prints progress every 10,000 cases and, on a disagreement, the scenario
 * (policies, entities, requests) and exits 1; 0 when every case agreed.
 */
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { fallbackCounts } from '../../src/cedar/js/fallback.js';
import { describeScenario, enginesFor, runScenario, scenario, type Disagreement } from '../support/differential.js';

const REQUESTS_PER_SCENARIO = 50;

function wholeNumber(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d{1,12}$/.test(text)) {
    process.stderr.write(`fuzz: ${flag} must be a whole number, got "${text}"\n`);
    process.exit(2);
  }
  return Number(text);
}

const { values } = parseArgs({ options: { cases: { type: 'string' }, seed: { type: 'string' } }, strict: true });
const cases = wholeNumber(values.cases, '--cases', 100_000);
const seed = wholeNumber(values.seed, '--seed', Date.now() % 1_000_000_007);
const scenarios = Math.ceil(cases / REQUESTS_PER_SCENARIO);

const started = Date.now();
let decided = 0;
let nextReport = 10_000;
let found: { text: string } | undefined;
process.stdout.write(
  `fuzz: ${scenarios * REQUESTS_PER_SCENARIO} cases (${scenarios} policy sets x ${REQUESTS_PER_SCENARIO} requests), seed ${seed}\n`,
);

const result = fc.check(
  fc.property(scenario(REQUESTS_PER_SCENARIO), (s) => {
    const d: Disagreement[] = runScenario(s, enginesFor(decided / REQUESTS_PER_SCENARIO));
    decided += s.requests.length;
    if (decided >= nextReport) {
      const secs = (Date.now() - started) / 1000;
      process.stdout.write(
        `fuzz: ${decided} cases agreed, ${secs.toFixed(0)} s, ${(decided / secs).toFixed(0)} cases/s\n`,
      );
      nextReport += 10_000;
    }
    if (d.length > 0) {
      found ??= { text: describeScenario(s, d) };
      return false;
    }
    return true;
  }),
  { numRuns: scenarios, seed, endOnFailure: true },
);

const secs = ((Date.now() - started) / 1000).toFixed(0);
if (result.failed) {
  process.stdout.write(
    `fuzz: DISAGREEMENT after ${decided} cases (${secs} s), seed ${seed}, path ${result.counterexamplePath}\n${found?.text ?? String(result.errorInstance)}\n`,
  );
  process.exit(1);
}
process.stdout.write(
  `fuzz: ${decided} cases, no disagreement (${secs} s, seed ${seed}); JS engine fallbacks to wasm: ${JSON.stringify(Object.fromEntries(fallbackCounts()))}\n`,
);
