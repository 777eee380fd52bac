/**
 * Shadow evaluation: decide the same request again with candidate rules and
 * compare, without ever enforcing the candidate.
 *
 * - `@shadow` policies live in the active set; the request is decided as plain
 *   Cedar would decide it with them included (cedar/engine.ts
 *   `decideWithShadowPolicies`: by the JS engine, wasm only where the engine is
 *   wasm or a shadow policy is left to it).
 * - a shadow version (named in the bundle store's pointer) is a whole other
 *   compiled set; the request is rebuilt against its entities and mode.
 *
 * Only the allow/deny outcome is compared: a different determining policy
 * with the same outcome is not a disagreement anyone acts on.
 */
import { authorizeInput } from './authorize-input.js';
import { inputToEngineRequest } from './cedar-request.js';
import type { ActiveBundle } from '../bundle/active-bundle.js';
import { decideWithShadowPolicies } from '../cedar/engine.js';
import type { EngineResult } from '../cedar/evaluate.js';
import { wholeContextReads } from '../cedar/reads.js';
import type { PrincipalRef } from '../context/principal.js';
import type { RequestModel } from '../envoy/request-model.js';
import type { ContextFields } from '../context/context-fields.js';
import type { RequestEnricher } from '../context/request-enricher.js';
import { decidedByEngine, type CheckOutcome } from './decide-check.js';

export type ShadowSource = 'policies' | 'version';

export interface ShadowResult {
  source: ShadowSource;
  /** The active version (for @shadow policies) or the shadow version. */
  version: string;
  /** Undefined when the shadow evaluation itself failed. */
  decision?: 'allow' | 'deny';
  policies: string[];
  mismatch: boolean;
  error?: string;
}

/** Everything a shadow evaluation needs, captured while the request is decided. */
export interface ShadowJob {
  input: RequestModel;
  principal: PrincipalRef;
  set: ActiveBundle;
  enforced: EngineResult;
  shadowVersion: ActiveBundle | null;
  /** Server-computed context fields against a given set (its IP lists and timezone); plain context without. */
  fieldsFor?: (set: ActiveBundle) => ContextFields;
}

export function hasShadowWork(set: ActiveBundle, shadowVersion: ActiveBundle | null): boolean {
  return set.policySet.hasShadowPolicies || (shadowVersion !== null && shadowVersion.version !== set.version);
}

/**
 * The shadow job for a check the engine decided in time, when the active set
 * has @shadow policies or a shadow version differs from it; undefined otherwise.
 * and this request is among the sampled fraction (`sampleRate`, 0-1).
 */
export function shadowJobFor(
  outcome: CheckOutcome,
  set: ActiveBundle | null,
  shadowVersion: ActiveBundle | null,
  enricher: RequestEnricher,
  sampleRate: number,
): ShadowJob | undefined {
  const { input, principal, engine } = outcome;
  if (
    !set ||
    !input ||
    !principal ||
    !engine ||
    !decidedByEngine(outcome) ||
    !hasShadowWork(set, shadowVersion) ||
    !sampled(sampleRate)
  )
    return undefined;
  return { input, principal, set, enforced: engine, shadowVersion, fieldsFor: (s) => enricher.fields(input, s) };
}

export function runShadowJob(job: ShadowJob): ShadowResult[] {
  const out: ShadowResult[] = [];
  const { set, enforced } = job;
  if (set.policySet.hasShadowPolicies) {
    // Every body field, not only those the enforced policies read: shadow policies may read others.
    out.push(
      compare('policies', set.version, enforced, () =>
        decideWithShadowPolicies(
          set.policySet,
          inputToEngineRequest(job.input, set, job.principal, job.fieldsFor?.(set), wholeContextReads()),
          { base: 'envoy' },
        ),
      ),
    );
  }
  const sv = job.shadowVersion;
  if (sv && sv.version !== set.version) {
    // Through the shadow version's own slices, as if it were active (no cache: its answers are not enforced).
    out.push(
      compare('version', sv.version, enforced, () => {
        const auth = authorizeInput(job.input, sv, 'shadow', { principal: job.principal, fields: job.fieldsFor?.(sv) });
        if (!auth.engine) throw new Error(auth.decision.message);
        return auth.engine;
      }),
    );
  }
  return out;
}

function compare(source: ShadowSource, version: string, enforced: EngineResult, run: () => EngineResult): ShadowResult {
  try {
    const r = run();
    return {
      source,
      version,
      decision: r.decision,
      policies: r.determining,
      mismatch: r.decision !== enforced.decision,
    };
  } catch (err) {
    return { source, version, policies: [], mismatch: false, error: (err as Error).message };
  }
}

function sampled(rate: number): boolean {
  return rate >= 1 || (rate > 0 && Math.random() < rate);
}
