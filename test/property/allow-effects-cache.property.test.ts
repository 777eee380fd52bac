/**
 * Effects from a cached decision equal effects from an uncached one: over
 * random streams of callers and header values no policy reads (so repeats hit
 * the cache), the answer Envoy gets, effects included, is the same with and
 * without the cache, and x-user-id is always this request's caller.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authorizeInput } from '../../src/pipeline/authorize-input.js';
import { BoundedTtlCache } from '../../src/cache/decision-cache.js';
import { parseBundleSettings } from '../../src/bundle/bundle-settings.js';
import { compileBundle } from '../../src/bundle/active-bundle.js';
import type { EngineResult } from '../../src/cedar/evaluate.js';
import { workloadPrincipal } from '../../src/context/principal.js';
import { applyAllowEffects } from '../../src/pipeline/allow-effects.js';
import { checkRequestToInput } from '../../src/envoy/check-request.js';
import { decisionToCheckResponse } from '../../src/envoy/check-response.js';
import { istioRequest } from '../support/requests.js';

const CALLERS = [
  '',
  'spiffe://cluster.local/ns/shop/sa/frontend',
  'spiffe://cluster.local/ns/shop/sa/orders',
  'spiffe://cluster.local/ns/ops/sa/admin',
];

const set = compileBundle({
  version: 'v1',
  policies: [
    {
      name: 'p.cedar',
      text: `
@id("shop-reads")
@set_headers("x-user-id: {principal.id}; x-tenant: {context.headers.x-tenant}; x-sa: {principal.serviceAccount}")
@strip_headers("cookie")
@response_headers("x-decision: {decision.id}")
permit (principal is Workload, action in Action::"read", resource) when { principal has namespace && principal.namespace == "shop" };

@id("public")
@strip_query("token")
permit (principal, action in Action::"read", resource) when { context.path like "/public*" };

@id("no-admin-writes")
forbid (principal, action in Action::"write", resource) when { context.path like "/admin*" };
`,
    },
  ],
  settings: parseBundleSettings('allowEffects:\n  - principalType: Anonymous\n    stripHeaders: [x-internal-*]\n'),
});

const request = fc.record({
  caller: fc.constantFrom(...CALLERS),
  method: fc.constantFrom('GET', 'POST'),
  path: fc.constantFrom('/public/a', '/orders/1', '/admin/x'),
  tenant: fc.option(fc.constantFrom('acme', 'globex', 'bad\u0001value'), { nil: undefined }),
  internal: fc.boolean(),
});

describe('effects and the decision cache', () => {
  it('cached and uncached answers carry the same effects, for this request', () => {
    let hits = 0;
    fc.assert(
      fc.property(fc.array(request, { minLength: 1, maxLength: 40 }), (stream) => {
        const cache = new BoundedTtlCache<EngineResult>(1000, 60_000);
        for (const r of stream) {
          const headers: Record<string, string> = {};
          if (r.tenant !== undefined) headers['x-tenant'] = r.tenant;
          if (r.internal) headers['x-internal-debug'] = '1';
          const parsed = checkRequestToInput(
            istioRequest({
              principal: r.caller || undefined,
              method: r.method,
              path: r.path,
              headers,
              ext: { service: 'svc' },
            }),
          );
          if (!parsed.ok) throw new Error(parsed.message);
          const principal = workloadPrincipal(r.caller);
          const answer = (withCache: boolean) => {
            const auth = authorizeInput(parsed.input, set, 'd-1', { principal, ...(withCache ? { cache } : {}) });
            if (auth.cache === 'hit') hits++;
            return decisionToCheckResponse(applyAllowEffects(auth.decision, set, auth).decision);
          };
          const plain = answer(false);
          const cached = answer(true);
          expect(cached).toEqual(plain);
          const userId = plain.ok_response?.headers.find((h) => h.header.key === 'x-user-id')?.header.value;
          if (userId !== undefined) expect(userId).toBe(r.caller);
        }
      }),
      { numRuns: 60 },
    );
    // Repeats were answered from the cache, so the comparison covered cached effects.
    expect(hits).toBeGreaterThan(0);
  });
});
