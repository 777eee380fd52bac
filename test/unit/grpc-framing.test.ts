import { describe, expect, it } from 'vitest';
import { encodeGrpcMessage, frameMessage, isGrpcContentType, parseGrpcTimeout } from '../../src/server/grpc-framing.js';

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
