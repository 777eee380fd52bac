/**
 * A fast-check fuzzer over CheckRequest bytes: whatever arrives on the wire,
 * the bounded deserializer and the request model never throw, refusals carry
 * only the two input reasons, and requests inside the limits are never refused.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  boundedCheckRequestDeserializer,
  DEFAULT_CHECK_REQUEST_LIMITS,
  refusalOf,
  scanCheckRequest,
  type CheckRequestLimits,
} from '../../src/envoy/check-request-limits.js';
import { checkRequestToInput } from '../../src/envoy/check-request.js';
import { authorizationService } from '../../src/envoy/protos.js';
import type { WireCheckRequest } from '../../src/envoy/wire-types.js';
import { istioRequest, rawHeaderRequest } from '../support/requests.js';

const check = authorizationService().service.Check;
const encode = (req: WireCheckRequest) => check.requestSerialize(req) as Buffer;
const decode = check.requestDeserialize as (b: Buffer) => WireCheckRequest;
const small: CheckRequestLimits = {
  ...DEFAULT_CHECK_REQUEST_LIMITS,
  maxHeaders: 8,
  maxContextExtensions: 4,
  maxFields: 400,
};

function neverThrows(bytes: Buffer, limits: CheckRequestLimits): void {
  const req = boundedCheckRequestDeserializer(decode, limits)(bytes);
  const refusal = refusalOf(req);
  if (refusal) expect(['malformed_request', 'request_too_large']).toContain(refusal.reason);
  else checkRequestToInput(req);
}

const seeds = [
  encode(
    istioRequest({
      principal: 'spiffe://cluster.local/ns/a/sa/b',
      path: '/orders/1?x=1',
      ext: { service: 'orders' },
      headers: { authorization: 'Bearer x' },
    }),
  ),
  encode(rawHeaderRequest({ method: 'POST', path: '/p', host: 'h', headers: { a: 'b', cookie: 'c' } })),
];

/** A valid request with some bytes flipped, cut, duplicated or inserted. */
const mutated = fc
  .tuple(
    fc.constantFrom(...seeds),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'cut', 'insert', 'dup')), {
      minLength: 1,
      maxLength: 8,
    }),
  )
  .map(([seed, edits]) => {
    let b = Buffer.from(seed);
    for (const [at, byte, op] of edits) {
      const i = at % Math.max(1, b.length);
      if (op === 'flip') b[i] = byte;
      else if (op === 'cut') b = b.subarray(0, i);
      else if (op === 'insert') b = Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]);
      else b = Buffer.concat([b.subarray(0, i), b.subarray(i, i + 16), b.subarray(i)]);
    }
    return b;
  });

describe('CheckRequest bytes fuzzer', () => {
  it('random bytes never throw, with the default and with small limits', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (u) => {
        neverThrows(Buffer.from(u), DEFAULT_CHECK_REQUEST_LIMITS);
        neverThrows(Buffer.from(u), small);
      }),
      { numRuns: 2000 },
    );
  });

  it('mutated Envoy requests never throw', () => {
    fc.assert(
      fc.property(mutated, (b) => {
        neverThrows(b, DEFAULT_CHECK_REQUEST_LIMITS);
        neverThrows(b, small);
      }),
      { numRuns: 2000 },
    );
  });

  it('a well-formed request is refused exactly when it passes a limit', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/);
    fc.assert(
      fc.property(
        fc.dictionary(name, fc.string({ maxLength: 20 }), { maxKeys: 12 }),
        fc.dictionary(name, fc.string({ maxLength: 8 }), { maxKeys: 6 }),
        (headers, ext) => {
          const req = rawHeaderRequest({ method: 'GET', path: '/x', host: 'h', headers, ext });
          const headerCount = req.attributes!.request!.http!.header_map!.headers!.length;
          const scan = scanCheckRequest(encode(req), small);
          const over = headerCount > small.maxHeaders || Object.keys(ext).length > small.maxContextExtensions;
          expect(scan.ok).toBe(!over);
          if (!scan.ok) expect(scan.reason).toBe('request_too_large');
          else expect(refusalOf(boundedCheckRequestDeserializer(decode, small)(encode(req)))).toBeUndefined();
        },
      ),
      { numRuns: 500 },
    );
  });
});
