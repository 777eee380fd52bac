import { EventEmitter } from 'node:events';
import type http2 from 'node:http2';
import { describe, expect, it } from 'vitest';
import {
  boundedCheckRequestDeserializer,
  DEFAULT_CHECK_REQUEST_LIMITS,
  refusalOf,
  scanCheckRequest,
  type CheckRequestLimits,
} from '../../src/envoy/check-request-limits.js';
import { authorizationService } from '../../src/envoy/protos.js';
import type { WireCheckRequest } from '../../src/envoy/wire-types.js';
import { PendingRequestBytes } from '../../src/server/grpc-transport.js';
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
const encode = (req: WireCheckRequest) => check.requestSerialize(req) as Buffer;
const small: CheckRequestLimits = {
  ...DEFAULT_CHECK_REQUEST_LIMITS,
  maxHeaders: 3,
  maxHeaderBytes: 20,
  maxContextExtensions: 2,
  maxFields: 50,
  maxDepth: 12,
};

/** A Struct nested `depth` times (each level is three messages deep: Value, Struct, field entry) in metadata_context.filter_metadata["f"]. */
function nestedStruct(depth: number): Buffer {
  let value: Buffer = Buffer.alloc(0); // Value{} at the bottom
  for (let i = 0; i < depth; i++) {
    const struct = lenField(1, Buffer.concat([lenField(1, 'k'), lenField(2, value)])); // Struct{fields{k: value}}
    value = lenField(5, struct); // Value{struct_value}
  }
  const struct = lenField(1, Buffer.concat([lenField(1, 'k'), lenField(2, value)]));
  const metadata = lenField(1, Buffer.concat([lenField(1, 'f'), lenField(2, struct)]));
  return checkRequestBytes({ attributeFields: lenField(11, metadata) });
}

describe('scanCheckRequest', () => {
  const rows: {
    name: string;
    bytes: Buffer;
    limits?: CheckRequestLimits;
    expected: { ok: true } | { reason: string; message: RegExp };
  }[] = [
    {
      name: 'an Istio request passes',
      bytes: encode(istioRequest({ path: '/x', ext: { service: 'orders' } })),
      expected: { ok: true },
    },
    {
      name: 'a raw header_map request passes',
      bytes: encode(rawHeaderRequest({ method: 'GET', path: '/x', host: 'h', headers: { a: 'b' } })),
      expected: { ok: true },
    },
    {
      name: 'an empty message passes (the handler names what is missing)',
      bytes: Buffer.alloc(0),
      expected: { ok: true },
    },
    {
      name: 'size over the limit',
      bytes: Buffer.alloc(5000),
      limits: { ...small, maxRequestBytes: 4096 },
      expected: { reason: 'request_too_large', message: /5000 bytes, more than the limit of 4096/ },
    },
    {
      name: 'empty header_map entries count',
      bytes: emptyHeaderMapRequest(4),
      limits: small,
      expected: { reason: 'request_too_large', message: /more than 3 headers/ },
    },
    {
      name: 'headers map entries count',
      bytes: checkRequestBytes({ httpFields: Buffer.concat([httpRequestFields(), emptyFields(3, 4)]) }),
      limits: small,
      expected: { reason: 'request_too_large', message: /more than 3 headers/ },
    },
    {
      name: 'header bytes: key, value and raw_value',
      bytes: checkRequestBytes({
        httpFields: Buffer.concat([
          httpRequestFields(),
          lenField(13, lenField(1, Buffer.concat([lenField(1, 'k'.repeat(10)), lenField(3, 'v'.repeat(11))]))),
        ]),
      }),
      limits: small,
      expected: { reason: 'request_too_large', message: /headers exceed 20 bytes/ },
    },
    {
      name: 'empty context_extensions count',
      bytes: emptyContextExtensionsRequest(3),
      limits: small,
      expected: { reason: 'request_too_large', message: /more than 2 context_extensions/ },
    },
    {
      name: 'fields in any message count',
      bytes: checkRequestBytes({ attributeFields: lenField(1, emptyFields(3, 60)) }),
      limits: small,
      expected: { reason: 'request_too_large', message: /more than 50 fields/ },
    },
    { name: 'nesting within the limit passes', bytes: nestedStruct(1), limits: small, expected: { ok: true } },
    {
      name: 'nesting past the limit',
      bytes: nestedStruct(5),
      limits: small,
      expected: { reason: 'request_too_large', message: /deeper than 12/ },
    },
    {
      name: '50,000-deep Structs stop at the default depth',
      bytes: nestedStruct(50_000),
      expected: { reason: 'request_too_large', message: /deeper than 64/ },
    },
    {
      name: 'a length past the end',
      bytes: Buffer.from([0x0a, 0x05, 0x01]),
      expected: { reason: 'malformed_request', message: /past the end/ },
    },
    {
      name: 'a truncated varint',
      bytes: Buffer.from([0x10, 0x80]),
      expected: { reason: 'malformed_request', message: /truncated varint/ },
    },
    {
      name: 'an 11-byte varint',
      bytes: Buffer.concat([Buffer.from([0x10]), Buffer.alloc(10, 0xff), Buffer.from([0x01])]),
      expected: { reason: 'malformed_request', message: /longer than 10 bytes/ },
    },
    {
      name: 'field number 0',
      bytes: Buffer.from([0x02, 0x00]),
      expected: { reason: 'malformed_request', message: /field number 0/ },
    },
    {
      name: 'wire type 6',
      bytes: Buffer.from([0x0e]),
      expected: { reason: 'malformed_request', message: /wire type 6/ },
    },
    {
      name: 'a fixed64 cut short',
      bytes: Buffer.from([0x09, 1, 2, 3]),
      expected: { reason: 'malformed_request', message: /past the end/ },
    },
    {
      name: 'a message field sent as a varint',
      bytes: Buffer.from([0x08, 0x01]),
      expected: { reason: 'malformed_request', message: /not a varint/ },
    },
    {
      name: 'unknown fields are skipped',
      bytes: Buffer.concat([checkRequestBytes(), varint(99 * 8), varint(7), lenField(100, 'x')]),
      expected: { ok: true },
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const scan = scanCheckRequest(row.bytes, row.limits);
      if ('ok' in row.expected) expect(scan).toEqual({ ok: true });
      else {
        expect(scan.ok).toBe(false);
        if (scan.ok) return;
        expect(scan.reason).toBe(row.expected.reason);
        expect(scan.message).toMatch(row.expected.message);
      }
    });
  }

  it('stops at the field limit: 4 million entries cost no more than 20,000 fields', () => {
    const scan = scanCheckRequest(emptyHeaderMapRequest(4_000_000), {
      ...DEFAULT_CHECK_REQUEST_LIMITS,
      maxRequestBytes: 8 * 1024 * 1024,
      maxHeaders: 10_000_000,
    });
    expect(scan).toMatchObject({
      ok: false,
      reason: 'request_too_large',
      message: 'CheckRequest has more than 20000 fields',
    });
  });
});

describe('boundedCheckRequestDeserializer', () => {
  const deserialize = boundedCheckRequestDeserializer(
    check.requestDeserialize as (b: Buffer) => WireCheckRequest,
    DEFAULT_CHECK_REQUEST_LIMITS,
  );
  it('decodes what passes the scan', () => {
    const req = deserialize(encode(istioRequest({ path: '/orders/1' })));
    expect(refusalOf(req)).toBeUndefined();
    expect(req.attributes?.request?.http?.path).toBe('/orders/1');
  });
  it('returns a refusal, never throws, for what the decoder refuses', () => {
    // tls_session (field 12) is a leaf to the scan; protobufjs decodes it and meets wire type 7.
    const bytes = checkRequestBytes({ attributeFields: lenField(12, Buffer.from([0x0f])) });
    expect(scanCheckRequest(bytes)).toEqual({ ok: true });
    expect(() => check.requestDeserialize(bytes)).toThrow();
    expect(refusalOf(deserialize(bytes))).toEqual({
      reason: 'malformed_request',
      message: 'CheckRequest is not valid protobuf',
    });
  });
  it('refusals are not requests', () => {
    expect(refusalOf(deserialize(Buffer.from([0x0f])))).toMatchObject({ reason: 'malformed_request' });
    expect(refusalOf(istioRequest({}))).toBeUndefined();
    expect(refusalOf(null)).toBeUndefined();
  });
});

describe('PendingRequestBytes', () => {
  class FakeStream extends EventEmitter {
    destroyed = false;
    rstCode: number | undefined;
    close(code: number) {
      this.rstCode = code;
      this.destroyed = true;
      this.emit('close');
    }
  }
  const asStream = (s: FakeStream) => s as unknown as http2.ServerHttp2Stream;

  it('never holds more than the bound: the largest pending call is dropped', () => {
    const dropped: string[] = [];
    const pending = new PendingRequestBytes(1000, 60_000, { onDropped: (c) => dropped.push(c) });
    const streams = Array.from({ length: 5 }, () => new FakeStream());
    for (const s of streams) pending.track(asStream(s));
    for (let round = 0; round < 10; round++) {
      streams.forEach((s, i) => {
        if (!s.destroyed) s.emit('data', Buffer.alloc(50 + i * 10));
        expect(pending.bytes).toBeLessThanOrEqual(1000);
      });
    }
    expect(dropped.length).toBeGreaterThan(0);
    expect(dropped.every((c) => c === 'memory')).toBe(true);
    // The biggest senders went first.
    expect(streams[4].destroyed).toBe(true);
    expect(streams[0].destroyed).toBe(false);
    pending.stop();
  });

  it('releases a call when its request is complete (end) or its stream closes', () => {
    const pending = new PendingRequestBytes(1000, 60_000, { onDropped: () => undefined });
    const a = new FakeStream();
    const b = new FakeStream();
    pending.track(asStream(a));
    pending.track(asStream(b));
    a.emit('data', Buffer.alloc(300));
    b.emit('data', Buffer.alloc(200));
    expect(pending.bytes).toBe(500);
    a.emit('end');
    expect(pending.bytes).toBe(200);
    b.emit('close');
    expect(pending.bytes).toBe(0);
    expect(pending.size).toBe(0);
    pending.stop();
  });
});
