import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeGrpcMessage,
  frameMessage,
  GrpcMessageReader,
  isGrpcContentType,
  parseGrpcTimeout,
} from '../../src/server/grpc-framing.js';

describe('grpc-timeout', () => {
  const rows: { input: string | string[] | undefined; expected: number | undefined | null }[] = [
    { input: undefined, expected: undefined },
    { input: '1H', expected: 3_600_000 },
    { input: '2M', expected: 120_000 },
    { input: '3S', expected: 3000 },
    { input: '250m', expected: 250 },
    { input: '1500u', expected: 1.5 },
    { input: '99999999n', expected: 99.999999 },
    { input: '100', expected: null },
    { input: '123456789S', expected: null },
    { input: '1 S', expected: null },
    { input: '-1S', expected: null },
    { input: '1s', expected: null },
    { input: ['1S', '2S'], expected: null },
  ];
  for (const row of rows)
    it(`${JSON.stringify(row.input)} → ${row.expected}`, () =>
      expect(parseGrpcTimeout(row.input)).toEqual(row.expected));
});

describe('grpc-message', () => {
  const rows = [
    { input: 'OK', expected: 'OK' },
    { input: '100%', expected: '100%25' },
    { input: 'caf\u00e9', expected: 'caf%C3%A9' },
    { input: 'line\nbreak', expected: 'line%0Abreak' },
  ];
  for (const row of rows)
    it(`${JSON.stringify(row.input)} → ${row.expected}`, () => expect(encodeGrpcMessage(row.input)).toBe(row.expected));
});

describe('content-type', () => {
  const rows = [
    { input: 'application/grpc', expected: true },
    { input: 'application/grpc+proto', expected: true },
    { input: 'application/grpc;charset=utf-8', expected: true },
    { input: 'application/grpcx', expected: false },
    { input: 'application/json', expected: false },
    { input: undefined, expected: false },
  ];
  for (const row of rows)
    it(`${row.input} → ${row.expected}`, () => expect(isGrpcContentType(row.input)).toBe(row.expected));
});

describe('message framing', () => {
  it('prefixes a flag byte 0 and the big-endian length', () => {
    expect([...frameMessage(Buffer.from([7, 8, 9]))]).toEqual([0, 0, 0, 0, 3, 7, 8, 9]);
  });
});

describe('GrpcMessageReader', () => {
  const frame = (m: Uint8Array, flag = 0): Buffer => {
    const f = frameMessage(m);
    f[0] = flag;
    return f;
  };
  /** Reads `bytes` cut at `cuts`; the messages read and the first framing error. */
  const read = (bytes: Buffer, cuts: number[], maxBytes = 1000, maxMessages?: number) => {
    const messages: number[][] = [];
    const reader = new GrpcMessageReader(maxBytes, (m) => messages.push([...m]), maxMessages);
    const points = [...new Set([0, ...cuts.filter((c) => c > 0 && c < bytes.length), bytes.length])].sort(
      (a, b) => a - b,
    );
    for (let i = 0; i + 1 < points.length; i++) {
      const error = reader.push(bytes.subarray(points[i], points[i + 1]));
      if (error) return { messages, error, partial: reader.partial };
    }
    return { messages, error: undefined, partial: reader.partial };
  };

  it('any cut of a sequence of messages into chunks reads the same messages', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 5 }),
        fc.array(fc.nat({ max: 250 }), { maxLength: 20 }),
        (messages, cuts) => {
          const out = read(Buffer.concat(messages.map((m) => frame(m))), cuts);
          expect(out.error).toBeUndefined();
          expect(out.partial).toBe(false);
          expect(out.messages).toEqual(messages.map((m) => [...m]));
        },
      ),
    );
  });

  const rows = [
    {
      name: 'a length over the bound, at the prefix',
      bytes: frame(Buffer.alloc(20)),
      max: 10,
      error: { kind: 'oversize', length: 20 },
    },
    { name: 'the compressed flag', bytes: frame(Buffer.alloc(3), 1), max: 10, error: { kind: 'compressed' } },
    { name: 'a flag of 2', bytes: frame(Buffer.alloc(3), 2), max: 10, error: { kind: 'bad_flag', flag: 2 } },
    {
      name: 'a second message on a one-message call, at its first byte',
      bytes: Buffer.concat([frame(Buffer.alloc(3)), Buffer.from([0])]),
      max: 10,
      maxMessages: 1,
      error: { kind: 'extra_message' },
    },
  ];
  for (const row of rows)
    it(`${row.name} is refused, however the bytes are cut`, () => {
      for (let cut = 0; cut < row.bytes.length; cut++)
        expect(read(row.bytes, [cut], row.max, row.maxMessages).error).toEqual(row.error);
    });

  it('a stream cut inside a prefix or a body is partial', () => {
    const bytes = frame(Buffer.alloc(6));
    for (let end = 1; end < bytes.length; end++) expect(read(bytes.subarray(0, end), []).partial).toBe(true);
  });
});
