import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authorizeCheckRequest } from '../../src/pipeline/authorize-input.js';
import { compileBundle } from '../../src/bundle/active-bundle.js';
import { checkRequestToInput } from '../../src/envoy/check-request.js';
import type { WireCheckRequest } from '../../src/envoy/wire-types.js';

/** Anything a decoder could hand us: right shapes with hostile values, and wrong shapes. */
const text = fc.oneof(
  fc.string(),
  fc.constantFrom(
    '',
    ':',
    '::1',
    '10.0.0.1',
    '[::1]:80',
    'GET',
    '/a?b=%zz',
    'spiffe://td/ns/a/sa/b',
    '\u0000',
    'ümlaut',
  ),
);
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const junk = fc.anything();

const peer = fc.record(
  {
    address: maybe(
      fc.record({
        socket_address: maybe(
          fc.record({ address: maybe(text), port_value: maybe(fc.oneof(fc.integer(), fc.double())) }),
        ),
      }),
    ),
    principal: maybe(text),
    service: maybe(text),
  },
  { requiredKeys: [] },
);

const http = fc.record(
  {
    method: maybe(text),
    path: maybe(text),
    host: maybe(text),
    query: maybe(text),
    scheme: maybe(text),
    protocol: maybe(text),
    id: maybe(text),
    headers: maybe(fc.dictionary(text, fc.oneof(text, junk))),
    body: maybe(fc.oneof(text, fc.json(), junk)),
    raw_body: maybe(
      fc.oneof(
        fc.uint8Array().map((u) => Buffer.from(u)),
        junk,
      ),
    ),
    size: maybe(fc.oneof(fc.integer().map(String), junk)),
    header_map: maybe(
      fc.record(
        {
          headers: maybe(
            fc.array(
              fc.record(
                { key: maybe(text), value: maybe(text), raw_value: maybe(fc.uint8Array().map((u) => Buffer.from(u))) },
                { requiredKeys: [] },
              ),
            ),
          ),
        },
        { requiredKeys: [] },
      ),
    ),
  },
  { requiredKeys: [] },
);

const checkRequest: fc.Arbitrary<unknown> = fc.oneof(
  junk,
  fc.record(
    {
      attributes: maybe(
        fc.record(
          {
            source: maybe(peer),
            destination: maybe(peer),
            request: maybe(
              fc.record(
                {
                  time: maybe(
                    fc.record(
                      { seconds: maybe(fc.oneof(fc.string(), fc.integer(), fc.double())), nanos: maybe(fc.integer()) },
                      { requiredKeys: [] },
                    ),
                  ),
                  http: maybe(http),
                },
                { requiredKeys: [] },
              ),
            ),
            context_extensions: maybe(fc.dictionary(text, fc.oneof(text, junk))),
            tls_session: maybe(fc.record({ sni: maybe(text) }, { requiredKeys: [] })),
            metadata_context: maybe(
              fc.record({ filter_metadata: maybe(fc.dictionary(text, junk)) }, { requiredKeys: [] }),
            ),
          },
          { requiredKeys: [] },
        ),
      ),
    },
    { requiredKeys: [] },
  ),
);

const set = compileBundle({
  version: 'prop',
  policies: [
    {
      name: 'p.cedar',
      text: `permit(principal, action in Action::"read", resource) when { context.path like "/a*" && context.source has ip && context.source.ip.isInRange(ip("10.0.0.0/8")) };
             forbid(principal, action, resource) when { context.headers has "x" && context.headers["x"] == "y" };
             permit(principal is Workload, action, resource) when { principal has namespace && principal.namespace == "a" && context.time > datetime("2020-01-01") };
             forbid(principal, action, resource) when { context has json && context.json == {"a": 1} };
             forbid(principal, action, resource) when { context.bodyTruncated && context has body && context.body like "*z*" };`,
    },
  ],
});

describe('no CheckRequest makes the pipeline throw', () => {
  it('checkRequestToInput returns a value for any input', () => {
    fc.assert(
      fc.property(checkRequest, (req) => {
        const r = checkRequestToInput(req as WireCheckRequest);
        expect(typeof r.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it('authorizeCheckRequest always answers allow or a deny with a status, never an evaluation error', () => {
    fc.assert(
      fc.property(checkRequest, (req) => {
        const { decision } = authorizeCheckRequest(req as WireCheckRequest, set);
        expect(['allow', 'deny']).toContain(decision.kind);
        expect(decision.reason).not.toBe('evaluation_error');
        if (decision.kind === 'deny') expect([400, 403, 431]).toContain(decision.status);
      }),
      { numRuns: 1000 },
    );
  });

  it('any JSON body reaches Cedar as a value it accepts (escape keys, huge numbers, lone surrogates, nulls)', () => {
    const hostile = fc.oneof(
      fc.json(),
      fc
        .jsonValue()
        .map((v) =>
          JSON.stringify({ __entity: { type: 'User', id: 'x' }, v, n: [1e300, -0, 2 ** 63, null], s: '\uD800' }),
        ),
    );
    fc.assert(
      fc.property(hostile, fc.boolean(), (body, asBytes) => {
        const http = {
          method: 'POST',
          path: '/a',
          host: 'svc',
          headers: { 'content-type': 'application/json' },
          ...(asBytes ? { raw_body: Buffer.from(body) } : { body }),
        };
        const { decision } = authorizeCheckRequest({ attributes: { request: { http } } } as WireCheckRequest, set);
        expect(decision.reason).not.toBe('evaluation_error');
      }),
      { numRuns: 500 },
    );
  });
});
