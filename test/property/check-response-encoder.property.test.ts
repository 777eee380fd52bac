/**
 * The one-pass CheckResponse encoder against protobufjs (the encoder grpc-js
 * used through @grpc/proto-loader): on generated responses (allows with
 * headers to add and remove, response headers and query parameters to
 * remove; denies with any status, headers and body; dynamic metadata of every
 * Struct value kind; unicode everywhere), our bytes decode with protobufjs to
 * the same message as protobufjs's own bytes, and are the same bytes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Decision } from '../../src/decision.js';
import { encodeCheckResponse, encodeFramedCheckResponse } from '../../src/envoy/check-response-encoder.js';
import { decisionToCheckResponse } from '../../src/envoy/check-response.js';
import { authorizationService } from '../../src/envoy/protos.js';
import type { WireCheckResponse, WireHeaderValueOption, WireStructValue } from '../../src/envoy/wire-types.js';

const check = authorizationService().service.Check;
const protobufjsEncode = check.responseSerialize as (r: WireCheckResponse) => Buffer;
const decode = check.responseDeserialize as (b: Buffer) => unknown;

// Text as it reaches a response: ASCII, any unicode (astral planes included), empty.
const text = fc.oneof(fc.string({ maxLength: 30 }), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.constant(''));
const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);

const headerOption: fc.Arbitrary<WireHeaderValueOption> = fc.record(
  {
    header: fc.record({ key: headerName, value: text }),
    append: fc.record({ value: fc.boolean() }),
    append_action: fc.constantFrom(
      'APPEND_IF_EXISTS_OR_ADD',
      'ADD_IF_ABSENT',
      'OVERWRITE_IF_EXISTS_OR_ADD',
      'OVERWRITE_IF_EXISTS',
    ) as fc.Arbitrary<WireHeaderValueOption['append_action']>,
  },
  { requiredKeys: ['header'] },
);

const structValue: fc.Arbitrary<WireStructValue> = fc.letrec<{ value: WireStructValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ stringValue: text }),
    fc.record({ numberValue: fc.double({ noNaN: true }) }),
    fc.record({ boolValue: fc.boolean() }),
    fc.record({ nullValue: fc.constant('NULL_VALUE') }),
    fc.record({
      structValue: fc.record({
        fields: fc.dictionary(text, tie('value') as fc.Arbitrary<WireStructValue>, { maxKeys: 3 }),
      }),
    }),
    fc.record({
      listValue: fc.record({ values: fc.array(tie('value') as fc.Arbitrary<WireStructValue>, { maxLength: 3 }) }),
    }),
  ),
})).value;

const metadata = fc.record({ fields: fc.dictionary(text, structValue, { maxKeys: 6 }) });

const allow: fc.Arbitrary<WireCheckResponse> = fc.record(
  {
    status: fc.record({ code: fc.constant(0) }),
    ok_response: fc.record(
      {
        headers: fc.array(headerOption, { maxLength: 4 }),
        headers_to_remove: fc.array(headerName, { maxLength: 3 }),
        response_headers_to_add: fc.array(headerOption, { maxLength: 3 }),
        query_parameters_to_remove: fc.array(text, { maxLength: 3 }),
      },
      { requiredKeys: ['headers'] },
    ),
    dynamic_metadata: metadata,
  },
  { requiredKeys: ['status', 'ok_response'] },
);

const deny: fc.Arbitrary<WireCheckResponse> = fc.record(
  {
    status: fc.record({ code: fc.oneof(fc.constant(7), fc.integer()), message: text }, { requiredKeys: ['code'] }),
    denied_response: fc.record({
      status: fc.record({ code: fc.integer({ min: 100, max: 599 }) }),
      headers: fc.array(headerOption, { maxLength: 4 }),
      body: fc.oneof(text, fc.json()),
    }),
    dynamic_metadata: metadata,
  },
  { requiredKeys: ['status', 'denied_response'] },
);

// Responses as the pipeline builds them, from generated decisions.
const decision: fc.Arbitrary<Decision> = fc.record({
  kind: fc.constantFrom('allow', 'deny') as fc.Arbitrary<Decision['kind']>,
  reason: fc.constantFrom('policy_permit', 'no_permit', 'policy_forbid') as fc.Arbitrary<Decision['reason']>,
  status: fc.integer({ min: 200, max: 599 }),
  message: text,
  policies: fc.array(text, { maxLength: 4 }),
  headers: fc.dictionary(headerName, text, { maxKeys: 4 }),
  responseHeaders: fc.option(fc.dictionary(headerName, text, { maxKeys: 3 }), { nil: undefined }),
  headersToRemove: fc.option(fc.array(headerName, { maxLength: 3 }), { nil: undefined }),
  queryParametersToRemove: fc.option(fc.array(text, { maxLength: 3 }), { nil: undefined }),
  decisionId: fc.uuid(),
  version: fc.option(text, { nil: null }),
});
const fromDecision = fc
  .tuple(
    decision,
    fc.record(
      {
        principal: fc.record({ type: text, id: text }),
        mode: fc.constantFrom('normal', 'high-alert'),
        outcome: fc.constantFrom('allow', 'deny', 'dry_run_allow', 'fail_open'),
      },
      { requiredKeys: [] },
    ),
  )
  .map(([d, meta]) => decisionToCheckResponse(d, meta));

function expectSameAsProtobufjs(response: WireCheckResponse): void {
  const ours = encodeCheckResponse(response);
  const theirs = protobufjsEncode(response);
  expect(decode(ours)).toEqual(decode(theirs));
  expect(ours.equals(theirs)).toBe(true);
}

describe('the one-pass CheckResponse encoder', () => {
  it('encodes allows, denies and pipeline-built responses as protobufjs does', () => {
    fc.assert(fc.property(fc.oneof(allow, deny, fromDecision), expectSameAsProtobufjs), { numRuns: 1500 });
  });

  it('frames the same bytes behind a gRPC message prefix', () => {
    fc.assert(
      fc.property(fc.oneof(allow, deny, fromDecision), (response) => {
        const framed = encodeFramedCheckResponse(response);
        const bytes = encodeCheckResponse(response);
        expect(framed[0]).toBe(0);
        expect(framed.readUInt32BE(1)).toBe(bytes.length);
        expect(framed.subarray(5).equals(bytes)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('a response larger than its scratch buffer (a 100 KiB deny body) is written whole', () => {
    const body = 'é'.repeat(50_000) + 'x'.repeat(3);
    expectSameAsProtobufjs({
      status: { code: 7, message: 'big' },
      denied_response: { status: { code: 403 }, headers: [], body },
    });
    expect(
      (
        decode(
          encodeCheckResponse({ status: { code: 7 }, denied_response: { status: { code: 403 }, headers: [], body } }),
        ) as WireCheckResponse
      ).denied_response!.body,
    ).toBe(body);
  });

  it('a lone surrogate is written as U+FFFD, so the bytes stay UTF-8 (Envoy refuses a string that is not)', () => {
    const bytes = encodeCheckResponse({ status: { code: 7, message: 'a\uD800b' } });
    expect((decode(bytes) as WireCheckResponse).status.message).toBe('a\uFFFDb');
    expect(Buffer.from(bytes).toString('utf8')).toContain('a\uFFFDb');
  });
});
