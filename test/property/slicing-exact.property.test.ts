/**
 * Slicing and projection never change an answer: over random policy sets and
 * requests, the lean path (the slice for the request's action and resource, with
 * the context and entities cut to what that slice reads) gives exactly what the
 * whole set gives with the full request: decision, determining policies in
 * order, and the policies that errored with their messages.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authorizeInput } from '../../src/pipeline/authorize-input.js';
import { inputToCedarRequest } from '../../src/pipeline/cedar-request.js';
import { compileBundle, type ActiveBundle } from '../../src/bundle/active-bundle.js';
import { engineResultToDecision } from '../../src/pipeline/engine-decision.js';
import { evaluate, type EngineResult } from '../../src/cedar/evaluate.js';
import { checkRequestToInput } from '../../src/envoy/check-request.js';
import type { RequestModel } from '../../src/envoy/request-model.js';
import { policyFiles, requestSpec, specToCheckRequest, WORLD_ENTITIES } from '../support/generated-sets.js';

function inputOf(spec: fc.Arbitrary<never> | Parameters<typeof specToCheckRequest>[0]): RequestModel {
  const res = checkRequestToInput(specToCheckRequest(spec as Parameters<typeof specToCheckRequest>[0]));
  if (!res.ok) throw new Error(res.message);
  return res.input;
}

function comparable(r: EngineResult) {
  return {
    decision: r.decision,
    determining: r.determining,
    errors: [...r.errors].sort((a, b) =>
      a.policyId < b.policyId ? -1 : a.policyId > b.policyId ? 1 : a.message < b.message ? -1 : 1,
    ),
  };
}

function expectSameAnswer(bundle: ActiveBundle, input: RequestModel): void {
  const set = bundle.policySet;
  const full = evaluate(set, inputToCedarRequest(input, bundle), set.psetId);
  const lean = authorizeInput(input, bundle, 'id');
  expect(lean.engine, lean.decision.message).toBeDefined();
  expect(comparable(lean.engine!)).toEqual(comparable(full));
  expect(lean.decision).toEqual(engineResultToDecision(set, full, 'id'));
}

describe('sliced and projected evaluation equals whole-set evaluation', () => {
  it('on random sets and requests', () => {
    fc.assert(
      fc.property(policyFiles, fc.array(requestSpec, { minLength: 1, maxLength: 20 }), (files, requests) => {
        // Projection is the wasm engine's (the JS engine reads the request in place; its messages are its own, held by the differential suite to ids only).
        const set = compileBundle({ version: 'gen', policies: files, entities: WORLD_ENTITIES }, { engine: 'wasm' });
        try {
          for (const r of requests) expectSameAnswer(set, inputOf(r));
        } finally {
          set.policySet.retire();
        }
      }),
      { numRuns: 40 },
    );
  }, 60_000);
});

describe('the server compile (small steps) answers like the one-shot compile', () => {
  it('on random sets and requests', async () => {
    const { compileBundleInChunks } = await import('../../src/bundle/active-bundle.js');
    await fc.assert(
      fc.asyncProperty(policyFiles, fc.array(requestSpec, { minLength: 1, maxLength: 10 }), async (files, requests) => {
        const source = { version: 'gen', policies: files, entities: WORLD_ENTITIES };
        const oneShot = compileBundle(source);
        const { bundle: stepped } = await compileBundleInChunks(source);
        try {
          expect([...stepped.policySet.policies.values()].map((p) => [p.id, p.order, p.text])).toEqual(
            [...oneShot.policySet.policies.values()].map((p) => [p.id, p.order, p.text]),
          );
          for (const r of requests) {
            const input = inputOf(r);
            expect(authorizeInput(input, stepped, 'id').decision).toEqual(
              authorizeInput(input, oneShot, 'id').decision,
            );
          }
        } finally {
          oneShot.policySet.retire();
          stepped.policySet.retire();
        }
      }),
      { numRuns: 10 },
    );
  }, 60_000);
});
