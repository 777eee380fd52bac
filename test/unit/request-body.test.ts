import { describe, expect, it } from 'vitest';
import { addBodyFields, jsonToCedar, readsBody } from '../../src/pipeline/body-context.js';
import type { CedarValueJson } from '../../src/cedar/cedar-wasm.js';
import { emptyReads, type ContextReads } from '../../src/cedar/reads.js';
import {
  DEFAULT_BODY_LIMITS,
  isJsonContentType,
  NO_BODY,
  requestBody,
  type BodyLimits,
} from '../../src/envoy/request-body.js';
import type { WireHttpRequest } from '../../src/envoy/wire-types.js';

const JSON_TYPE = { 'content-type': 'application/json' };
const SMALL: BodyLimits = { maxBytes: 64, jsonMaxDepth: 3, jsonMaxKeys: 5 };

/** All body fields of one request, as a policy reading all of them sees them. */
function fields(
  http: WireHttpRequest,
  headers: Record<string, string> = {},
  limits: BodyLimits = DEFAULT_BODY_LIMITS,
): Record<string, CedarValueJson> {
  const ctx: Record<string, CedarValueJson> = {};
  addBodyFields(ctx, requestBody(http, headers, limits));
  return ctx;
}

describe('context.body, context.json, context.bodyTruncated', () => {
  const rows: {
    name: string;
    http: WireHttpRequest;
    headers?: Record<string, string>;
    limits?: BodyLimits;
    expected: Record<string, CedarValueJson>;
  }[] = [
    { name: 'no body', http: {}, expected: { bodyTruncated: false } },
    {
      name: 'an empty body is no body (proto3 cannot tell them apart)',
      http: { body: '' },
      expected: { bodyTruncated: false },
    },
    {
      name: 'plain text: body only',
      http: { body: 'hello' },
      headers: { 'content-type': 'text/plain' },
      expected: { bodyTruncated: false, body: 'hello' },
    },
    {
      name: 'JSON with a JSON content type',
      http: { body: '{"quantity":5}' },
      headers: JSON_TYPE,
      expected: { bodyTruncated: false, body: '{"quantity":5}', json: { quantity: 5 } },
    },
    {
      name: '+json types are JSON',
      http: { body: '[1]' },
      headers: { 'content-type': 'application/merge-patch+json; charset=utf-8' },
      expected: { bodyTruncated: false, body: '[1]', json: [1] },
    },
    {
      name: 'JSON text without a JSON content type is not parsed',
      http: { body: '{"quantity":5}' },
      headers: { 'content-type': 'text/plain' },
      expected: { bodyTruncated: false, body: '{"quantity":5}' },
    },
    {
      name: 'invalid JSON: body, no json',
      http: { body: '{"quantity":' },
      headers: JSON_TYPE,
      expected: { bodyTruncated: false, body: '{"quantity":' },
    },
    {
      name: 'a top-level JSON null: no json',
      http: { body: 'null' },
      headers: JSON_TYPE,
      expected: { bodyTruncated: false, body: 'null' },
    },
    {
      name: 'truncated by Envoy: flag, no body, no json',
      http: { body: '{"quantity":5' },
      headers: { ...JSON_TYPE, 'x-envoy-auth-partial-body': 'true' },
      expected: { bodyTruncated: true },
    },
    {
      name: 'partial flag false: whole',
      http: { body: 'x' },
      headers: { 'x-envoy-auth-partial-body': 'false' },
      expected: { bodyTruncated: false, body: 'x' },
    },
    {
      name: 'Envoy says the body is longer than what arrived',
      http: { body: 'abc', size: '10' },
      expected: { bodyTruncated: true },
    },
    {
      name: 'size -1 (unknown) is not truncation',
      http: { body: 'abc', size: '-1' },
      expected: { bodyTruncated: false, body: 'abc' },
    },
    {
      name: 'longer than maxBytes counts as truncated',
      http: { body: 'x'.repeat(65) },
      limits: SMALL,
      expected: { bodyTruncated: true },
    },
    {
      name: 'maxBytes counts UTF-8 bytes, not characters',
      http: { body: 'é'.repeat(33) },
      limits: SMALL,
      expected: { bodyTruncated: true },
    },
    {
      name: 'exactly maxBytes is whole',
      http: { body: 'x'.repeat(64) },
      limits: SMALL,
      expected: { bodyTruncated: false, body: 'x'.repeat(64) },
    },
    {
      name: 'JSON deeper than jsonMaxDepth: no json',
      http: { body: '{"a":{"b":{"c":{}}}}' },
      headers: JSON_TYPE,
      limits: SMALL,
      expected: { bodyTruncated: false, body: '{"a":{"b":{"c":{}}}}' },
    },
    {
      name: 'JSON at jsonMaxDepth',
      http: { body: '{"a":{"b":{"c":1}}}' },
      headers: JSON_TYPE,
      limits: SMALL,
      expected: { bodyTruncated: false, body: '{"a":{"b":{"c":1}}}', json: { a: { b: { c: 1 } } } },
    },
    {
      name: 'more keys than jsonMaxKeys: no json',
      http: { body: '[1,2,3,4,5,6]' },
      headers: JSON_TYPE,
      limits: SMALL,
      expected: { bodyTruncated: false, body: '[1,2,3,4,5,6]' },
    },
    {
      name: 'raw_body bytes (pack_as_bytes) are read as UTF-8',
      http: { raw_body: Buffer.from('{"q":"é"}') },
      headers: JSON_TYPE,
      expected: { bodyTruncated: false, body: '{"q":"é"}', json: { q: 'é' } },
    },
    {
      name: 'raw_body with invalid UTF-8: replacement characters, still matched by like',
      http: { raw_body: Buffer.from([0x44, 0xff, 0x52]) },
      expected: { bodyTruncated: false, body: 'D\uFFFDR' },
    },
    {
      name: 'raw_body wins over an empty body string',
      http: { body: '', raw_body: Buffer.from('b') },
      expected: { bodyTruncated: false, body: 'b' },
    },
  ];
  for (const r of rows) it(r.name, () => expect(fields(r.http, r.headers, r.limits)).toEqual(r.expected));

  it('a deep JSON body cannot overflow the stack', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expect(fields({ body: deep }, JSON_TYPE, { ...DEFAULT_BODY_LIMITS, maxBytes: 1_000_000 })).toEqual({
      bodyTruncated: false,
      body: deep,
    });
  });

  it('decodes and parses nothing until asked, and each only once', () => {
    let parses = 0;
    const original = JSON.parse;
    JSON.parse = ((text: string) => (parses++, original(text))) as typeof JSON.parse;
    try {
      const body = requestBody({ body: '{"a":1}' }, JSON_TYPE);
      expect(parses).toBe(0);
      expect(body.json()).toEqual({ a: 1 });
      expect(body.json()).toEqual({ a: 1 });
      expect(parses).toBe(1);
    } finally {
      JSON.parse = original;
    }
  });

  it('network checks and bodiless requests share NO_BODY', () => {
    expect(NO_BODY.truncated).toBe(false);
    expect(NO_BODY.text()).toBeUndefined();
  });
});

describe('JSON → Cedar values', () => {
  const rows: { name: string; json: unknown; expected: CedarValueJson | undefined }[] = [
    { name: 'integers are Longs', json: { n: 5, m: -7 }, expected: { n: 5, m: -7 } },
    { name: 'fractions become strings', json: { n: 1.5 }, expected: { n: '1.5' } },
    { name: '1e300 becomes a string', json: 1e300, expected: '1e+300' },
    { name: 'integers JavaScript cannot hold exactly become strings', json: 2 ** 53, expected: '9007199254740992' },
    { name: 'the largest exact integer is a Long', json: 2 ** 53 - 1, expected: 9007199254740991 },
    { name: 'arrays are sets, nulls left out', json: [1, null, 'a', [true]], expected: [1, 'a', [true]] },
    { name: 'null members are left out', json: { a: null, b: false }, expected: { b: false } },
    {
      name: "Cedar's escape keys are dropped: a body cannot make an entity",
      json: { owner: { __entity: { type: 'User', id: 'admin' } }, x: { __extn: { fn: 'ip', arg: '1.2.3.4' }, y: 1 } },
      expected: { owner: {}, x: { y: 1 } },
    },
    { name: 'lone surrogates become U+FFFD', json: { '\uD800k': '\uDC00' }, expected: { '\uFFFDk': '\uFFFD' } },
    { name: 'top-level null is absent', json: null, expected: undefined },
  ];
  for (const r of rows) it(r.name, () => expect(jsonToCedar(r.json as never)).toEqual(r.expected));

  it('a "__proto__" key is a key', () => {
    const out = jsonToCedar(JSON.parse('{"__proto__":{"admin":true}}')) as Record<string, unknown>;
    expect(Object.keys(out)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
  });
});

describe('which reads need the body', () => {
  const reads = (...names: string[]): ContextReads => {
    const r = emptyReads();
    for (const n of names) r.children.set(n, { ...emptyReads(), whole: true });
    return r;
  };
  it.each([
    { name: 'no reads', reads: reads(), expected: false },
    { name: 'other fields only', reads: reads('path', 'headers'), expected: false },
    { name: 'context.json', reads: reads('json'), expected: true },
    { name: 'context.body', reads: reads('body'), expected: true },
    { name: 'context.bodyTruncated', reads: reads('bodyTruncated'), expected: true },
    { name: 'the whole context', reads: { ...emptyReads(), whole: true }, expected: true },
    { name: 'unknown reads (undefined)', reads: undefined, expected: true },
  ])('$name', ({ reads: r, expected }) => expect(readsBody(r)).toBe(expected));

  it('adds only the fields read', () => {
    const ctx: Record<string, CedarValueJson> = {};
    addBodyFields(ctx, requestBody({ body: '{"a":1}' }, JSON_TYPE), reads('json'));
    expect(ctx).toEqual({ json: { a: 1 } });
  });

  it.each([
    ['application/json', true],
    ['Application/JSON; charset=utf-8', true],
    ['application/problem+json', true],
    ['text/json', false],
    ['application/jsonp', false],
    ['', false],
  ])('content type %j is JSON: %s', (type, expected) => expect(isJsonContentType(type)).toBe(expected));
});
