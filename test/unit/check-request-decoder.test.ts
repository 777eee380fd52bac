import { describe, expect, it } from 'vitest';
import { decodeCheckRequest } from '../../src/envoy/check-request-decoder.js';
import { authorizationService } from '../../src/envoy/protos.js';
import type { WireCheckRequest } from '../../src/envoy/wire-types.js';

const encode = (req: WireCheckRequest): Buffer => authorizationService().service.Check.requestSerialize(req) as Buffer;

function request(headers: Record<string, string>, method = 'GET'): Buffer {
  return encode({
    attributes: {
      source: { principal: 'spiffe://cluster.local/ns/a/sa/b' },
      request: { http: { method, path: '/x', host: 'svc', headers } },
    },
  });
}

describe('the decoder reads each request as its own bytes say (strings read again are shared, never mixed up)', () => {
  it('gives back each value exactly, alternating between requests whose strings differ by one byte', () => {
    const values = ['tenant-a', 'tenant-b', 'tenant-c', 'tenant-a', 'TENANT-A', 'tenant-a '];
    for (let round = 0; round < 50; round++) {
      for (const v of values) {
        const method = round % 2 === 0 ? 'GET' : 'PUT';
        const http = decodeCheckRequest(request({ 'x-tenant': v, 'x-other': `${v}!` }, method)).attributes!.request!
          .http!;
        expect(http.headers).toEqual({ 'x-tenant': v, 'x-other': `${v}!` });
        expect(http.method).toBe(method);
      }
    }
  });

  it('reads non-ASCII and long values through Node’s decoder, and credentials past the shared strings', () => {
    const long = 'x'.repeat(65);
    const headers = { 'x-name': 'Zoë', 'x-long': long, authorization: 'Bearer abc', cookie: 'a=1' };
    for (let i = 0; i < 3; i++)
      expect(decodeCheckRequest(request(headers)).attributes!.request!.http!.headers).toEqual(headers);
  });

  it('keeps a "__proto__" header an own value, never the prototype', () => {
    const http = decodeCheckRequest(request({ ['__proto__']: 'x' })).attributes!.request!.http!;
    expect(Object.getPrototypeOf(http.headers)).toBe(Object.prototype);
    expect(Object.hasOwn(http.headers!, '__proto__')).toBe(true);
  });
});

describe('names that are also Object.prototype members are plain names in the request model', () => {
  it('keeps "__proto__" and "constructor" as own entries of metadata, context extensions and the query', async () => {
    const { checkRequestToInput } = await import('../../src/envoy/check-request.js');
    const list = { listValue: {} };
    const req: WireCheckRequest = {
      attributes: {
        context_extensions: { ['__proto__']: 'x', constructor: 'y', service: 'svc' },
        metadata_context: { filter_metadata: { m: { fields: { ['__proto__']: list, constructor: list } } } },
        request: { http: { method: 'GET', path: '/a?constructor=1&__proto__=2&toString=3', host: 'svc' } },
      },
    };
    for (const decoded of [req, decodeCheckRequest(encode(req))]) {
      const result = checkRequestToInput(decoded, { nowMs: () => 0 });
      const input = result.input!;
      expect(Object.getPrototypeOf(input.filterMetadata.m)).toBe(Object.prototype);
      expect(Object.entries(input.filterMetadata.m as object)).toEqual([
        ['__proto__', []],
        ['constructor', []],
      ]);
      expect(Object.entries(input.contextExtensions)).toEqual([
        ['__proto__', 'x'],
        ['constructor', 'y'],
        ['service', 'svc'],
      ]);
      expect(Object.entries(input.query)).toEqual([
        ['constructor', '1'],
        ['__proto__', '2'],
        ['toString', '3'],
      ]);
    }
  });
});
