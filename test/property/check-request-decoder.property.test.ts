/**
 * The one-pass CheckRequest decoder against the reference it replaces:
 * protobufjs (through proto-loader) behind the limit scan. For generated
 * requests, hostile ones, mutations and random bytes, both give the same
 * refusal (reason and message) or the same request model.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCheckRequest } from '../../src/envoy/check-request-decoder.js';
import {
  boundedCheckRequestDeserializer,
  DEFAULT_CHECK_REQUEST_LIMITS,
  refusalOf,
  type CheckRequestLimits,
} from '../../src/envoy/check-request-limits.js';
import { checkRequestToInput } from '../../src/envoy/check-request.js';
import { authorizationService } from '../../src/envoy/protos.js';
import type { WireCheckRequest, WireStruct, WireStructValue } from '../../src/envoy/wire-types.js';
import {
  checkRequestBytes,
  emptyContextExtensionsRequest,
  emptyFields,
  emptyHeaderMapRequest,
  httpRequestFields,
  lenField,
  varint,
} from '../support/hostile-requests.js';
import { istioRequest, rawHeaderRequest } from '../support/requests.js';

const check = authorizationService().service.Check;
const encode = (req: unknown) => check.requestSerialize(req) as Buffer;
const protobufjs = check.requestDeserialize as (b: Buffer) => WireCheckRequest;
const small: CheckRequestLimits = {
  ...DEFAULT_CHECK_REQUEST_LIMITS,
  maxHeaders: 8,
  maxContextExtensions: 4,
  maxFields: 300,
  maxDepth: 6,
  maxHeaderBytes: 400,
};
const LIMITS = [DEFAULT_CHECK_REQUEST_LIMITS, small];
const input = { nowMs: () => 1_700_000_000_000 };

/** What the Check handler would see: the refusal, or the request model (its body read out, not its closures). */
function outcome(req: WireCheckRequest): unknown {
  const refusal = refusalOf(req);
  if (refusal) return { refusal };
  const model = checkRequestToInput(req, input);
  if (!model.input) return { model };
  const body = model.input.body;
  return {
    model: {
      ...model,
      input: { ...model.input, body: { truncated: body.truncated, text: body.text(), json: body.json() } },
    },
  };
}

function sameAsReference(bytes: Buffer): void {
  for (const limits of LIMITS) {
    const expected = outcome(boundedCheckRequestDeserializer(protobufjs, limits)(bytes));
    expect(outcome(decodeCheckRequest(bytes, limits))).toEqual(expected);
  }
}

// ---- generated CheckRequests (every field the protos know, some hostile values) ----
const str = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom(
    '',
    '__proto__',
    'constructor',
    ':path',
    'Host',
    'x-request-id',
    '\u00e9\ud83d\ude00',
    '::ffff:10.0.0.1',
    '10.1.2.3',
    'fe80::1',
  ),
);
const dict = (max: number) => fc.dictionary(str, str, { maxKeys: max });
const uint32 = fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.constant(4_294_967_295));
const socketAddress = fc.record(
  {
    protocol: fc.constantFrom('TCP', 'UDP'),
    address: str,
    port_value: uint32,
    named_port: str,
    resolver_name: str,
    ipv4_compat: fc.boolean(),
  },
  { requiredKeys: [] },
);
const address = fc.record(
  {
    socket_address: socketAddress,
    pipe: fc.record({ path: str, mode: uint32 }, { requiredKeys: [] }),
    envoy_internal_address: fc.record({ server_listener_name: str, endpoint_id: str }, { requiredKeys: [] }),
  },
  { requiredKeys: [] },
);
const peer = fc.record(
  {
    address,
    service: str,
    labels: dict(3),
    principal: fc.oneof(str, fc.constant('spiffe://cluster.local/ns/shop/sa/frontend')),
    certificate: str,
  },
  { requiredKeys: [] },
);
const seconds = fc.oneof(
  fc.integer({ min: -5, max: 2_000_000_000 }).map(String),
  fc.constantFrom('253402300800', '9223372036854775807', '-9223372036854775808', '0'),
);
const time = fc.record(
  { seconds, nanos: fc.integer({ min: -2_147_483_648, max: 2_147_483_647 }) },
  { requiredKeys: [] },
);
const { value: structValueArb } = fc.letrec<{ value: WireStructValue; struct: WireStruct }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ nullValue: fc.constant('NULL_VALUE') }),
    fc.record({ numberValue: fc.double() }),
    fc.record({ stringValue: str }),
    fc.record({ boolValue: fc.boolean() }),
    fc.record({ structValue: tie('struct') as fc.Arbitrary<WireStruct> }),
    fc.record({
      listValue: fc.record({ values: fc.array(tie('value') as fc.Arbitrary<WireStructValue>, { maxLength: 3 }) }),
    }),
  ),
  struct: fc.record({ fields: fc.dictionary(str, tie('value') as fc.Arbitrary<WireStructValue>, { maxKeys: 3 }) }),
}));
const struct = fc.dictionary(str, structValueArb, { maxKeys: 3 }).map((fields) => ({ fields }));
const metadata = fc.record(
  {
    filter_metadata: fc.dictionary(str, struct, { maxKeys: 2 }),
    typed_filter_metadata: fc.dictionary(
      str,
      fc.record({ type_url: str, value: fc.uint8Array({ maxLength: 4 }).map(Buffer.from) }),
      { maxKeys: 1 },
    ),
  },
  { requiredKeys: [] },
);
const headerValue = fc.record(
  {
    key: str,
    value: str,
    raw_value: fc
      .oneof(
        fc.uint8Array({ maxLength: 6 }),
        fc.string({ maxLength: 6 }).map((s) => new TextEncoder().encode(s)),
      )
      .map(Buffer.from),
  },
  { requiredKeys: [] },
);
const http = fc.record(
  {
    id: str,
    method: fc.oneof(str, fc.constantFrom('GET', 'post')),
    headers: dict(6),
    path: fc.oneof(str, fc.constantFrom('/orders/1?x=1&y=%zz', '/a/../b', '/%2e%2e/x')),
    host: str,
    scheme: str,
    query: str,
    fragment: str,
    size: fc.integer({ min: -1, max: 1e9 }).map(String),
    protocol: str,
    body: str,
    raw_body: fc.uint8Array({ maxLength: 8 }).map(Buffer.from),
    header_map: fc.record({ headers: fc.array(headerValue, { maxLength: 6 }) }),
  },
  { requiredKeys: [] },
);
const attributes = fc.record(
  {
    source: peer,
    destination: peer,
    request: fc.record({ time, http }, { requiredKeys: [] }),
    context_extensions: dict(5),
    metadata_context: metadata,
    route_metadata_context: metadata,
    tls_session: fc.record({ sni: str }, { requiredKeys: [] }),
  },
  { requiredKeys: [] },
);
const generated = fc.record({ attributes }, { requiredKeys: [] }).map((req) => encode(req));

// ---- hostile and broken bytes ----
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
const hostile = fc.constantFrom(
  emptyHeaderMapRequest(2000),
  emptyContextExtensionsRequest(300),
  checkRequestBytes(),
  checkRequestBytes({ attributeFields: emptyFields(11, 50) }),
  // A known string field sent as a varint, a message field sent as fixed32, a group, field 0.
  checkRequestBytes({ httpFields: Buffer.concat([httpRequestFields(), varint(2 * 8), varint(5)]) }),
  lenField(1, Buffer.concat([varint(4 * 8 + 5), Buffer.from([1, 2, 3, 4])])),
  lenField(1, Buffer.concat([varint(3 * 8 + 3), varint(3 * 8 + 4)])),
  lenField(1, Buffer.concat([varint(0), varint(1)])),
  // Deep metadata: Struct → Value → Struct … past the depth limit.
  lenField(1, lenField(11, lenField(1, Buffer.concat([lenField(1, 'k'), lenField(2, nestedStruct(40))])))),
);

function nestedStruct(depth: number): Buffer {
  let s: Buffer = Buffer.alloc(0);
  for (let i = 0; i < depth; i++) s = lenField(1, Buffer.concat([lenField(1, 'k'), lenField(2, lenField(5, s))]));
  return s;
}

function mutate(seed: Buffer, edits: [number, number, string][]): Buffer {
  let b = Buffer.from(seed);
  for (const [at, byte, op] of edits) {
    const i = at % Math.max(1, b.length);
    if (op === 'flip') b[i] = byte;
    else if (op === 'cut') b = b.subarray(0, i);
    else if (op === 'insert') b = Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]);
    else b = Buffer.concat([b.subarray(0, i), b.subarray(i, i + 16), b.subarray(i)]);
  }
  return b;
}
const edits = fc.array(
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'cut', 'insert', 'dup')),
  { minLength: 1, maxLength: 6 },
);

describe('decodeCheckRequest equals protobufjs + the limit scan', () => {
  it('generated CheckRequests with every field the protos know', () => {
    fc.assert(
      fc.property(generated, (b) => sameAsReference(b)),
      { numRuns: 800 },
    );
  });

  it('reads what an encoder writes itself (protobufjs only reads bytes no encoder writes)', () => {
    fc.assert(
      fc.property(generated, (b) => {
        let irregular = false;
        decodeCheckRequest(b, DEFAULT_CHECK_REQUEST_LIMITS, () => (irregular = true));
        expect(irregular).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('hostile requests (millions of empty entries, wrong wire types, groups, deep Structs)', () => {
    fc.assert(
      fc.property(hostile, (b) => sameAsReference(b)),
      { numRuns: 50 },
    );
  });

  it('mutated generated and Envoy requests', () => {
    fc.assert(
      fc.property(fc.oneof(generated, fc.constantFrom(...seeds)), edits, (seed, e) => sameAsReference(mutate(seed, e))),
      { numRuns: 2000 },
    );
  });

  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (u) => sameAsReference(Buffer.from(u))),
      { numRuns: 2000 },
    );
  });

  it('random bytes inside a valid envelope (attributes, request, http)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), fc.constantFrom(1, 2, 3), (u, level) => {
        const body = Buffer.from(u);
        const bytes =
          level === 1
            ? lenField(1, body)
            : level === 2
              ? lenField(1, lenField(4, body))
              : lenField(1, lenField(4, lenField(2, body)));
        sameAsReference(bytes);
      }),
      { numRuns: 2000 },
    );
  });
});
