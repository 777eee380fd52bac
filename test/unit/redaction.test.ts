import { describe, expect, it } from 'vitest';
import {
  cutString,
  headersForLog,
  redactedHeaderNames,
  redactQuery,
  redactUrl,
  redactUserInfo,
} from '../../src/observability/redaction.js';
import { describeS3Error } from '../../src/bundle/store/s3-client.js';

describe('redactQuery', () => {
  const rows = [
    { name: 'no query', input: '/orders/5', expected: '/orders/5' },
    { name: 'harmless parameters', input: '/search?q=shoes&page=2', expected: '/search?q=shoes&page=2' },
    { name: 'token', input: '/cb?token=abc', expected: '/cb?token=[redacted]' },
    {
      name: 'access_token among others',
      input: '/cb?a=1&access_token=abc&b=2',
      expected: '/cb?a=1&access_token=[redacted]&b=2',
    },
    {
      name: 'api_key, apikey, api-key',
      input: '/x?api_key=1&apikey=2&api-key=3',
      expected: '/x?api_key=[redacted]&apikey=[redacted]&api-key=[redacted]',
    },
    {
      name: 'password, passwd, pwd',
      input: '/x?password=1&passwd=2&pwd=3',
      expected: '/x?password=[redacted]&passwd=[redacted]&pwd=[redacted]',
    },
    {
      name: 'client_secret and OAuth code',
      input: '/x?client_secret=s&code=c&state=ok',
      expected: '/x?client_secret=[redacted]&code=[redacted]&state=ok',
    },
    {
      name: 'signed URL',
      input: '/b/k?X-Amz-Credential=c&X-Amz-Signature=s&X-Amz-Expires=60',
      expected: '/b/k?X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]&X-Amz-Expires=60',
    },
    {
      name: 'case and percent-encoding of the name',
      input: '/x?%54oken=1&SESSIONID=2',
      expected: '/x?%54oken=[redacted]&SESSIONID=[redacted]',
    },
    { name: 'fragment kept', input: 'https://a/b?sig=1#frag', expected: 'https://a/b?sig=[redacted]#frag' },
    { name: 'a name without a value is kept', input: '/x?token', expected: '/x?token' },
    {
      name: 'undecodable name judged as written',
      input: '/x?%E0%A4%A=1&key=2',
      expected: '/x?%E0%A4%A=1&key=[redacted]',
    },
    { name: 'keyboard is not key', input: '/x?keyboard=1', expected: '/x?keyboard=1' },
  ];
  for (const row of rows) it(row.name, () => expect(redactQuery(row.input)).toBe(row.expected));
});

describe('redactUrl and redactUserInfo', () => {
  const rows = [
    { input: 'http://user:pass@minio:9000', expected: 'http://minio:9000/' },
    {
      input: 'https://minio.example/?X-Amz-Security-Token=t',
      expected: 'https://minio.example/?X-Amz-Security-Token=[redacted]',
    },
    { input: 'http://127.0.0.1:9000', expected: 'http://127.0.0.1:9000/' },
    { input: 'not a url //u:p@host', expected: 'not a url //[redacted]@host' },
  ];
  for (const row of rows) it(row.input, () => expect(redactUrl(row.input)).toBe(row.expected));

  it('removes user info from free text, e.g. an S3 error', () => {
    expect(redactUserInfo('connect to http://ops:pw@10.0.0.1:9000 failed')).toBe(
      'connect to http://[redacted]@10.0.0.1:9000 failed',
    );
    expect(describeS3Error(new Error('getaddrinfo ENOTFOUND for https://a:b@store'))).toBe(
      'getaddrinfo ENOTFOUND for https://[redacted]@store',
    );
  });
});

describe('cutString', () => {
  it('keeps short strings and marks cut ones with how much was cut', () => {
    expect(cutString('abc', 3)).toBe('abc');
    expect(cutString('abcdef', 3)).toBe('abc…[cut 3 chars]');
  });
});

describe('redactedHeaderNames follows the config', () => {
  it('adds the trusted headers and the configured ones, lower-cased', () => {
    const names = redactedHeaderNames({
      jwtUpstreamHeader: 'X-JWT-Payload',
      riskHeader: 'x-risk',
      decisionLogRedactHeaders: ['X-Tenant-Key'],
    });
    for (const n of ['authorization', 'x-forwarded-client-cert', 'x-jwt-payload', 'x-risk', 'x-tenant-key'])
      expect(names.has(n), n).toBe(true);
    expect(redactedHeaderNames({}).has('x-jwt-payload')).toBe(false);
  });
});

describe('headersForLog', () => {
  it('redacts, strips secret query parameters, cuts, and does not change its input', () => {
    const input = {
      authorization: 'Bearer x',
      referer: 'https://a/?token=t&p=1',
      'x-long': 'y'.repeat(20),
      ['n'.repeat(20)]: 'v',
    };
    const copy = { ...input };
    expect(headersForLog(input, new Set(['authorization']), 16)).toEqual({
      authorization: '[redacted]',
      // Redacted before it is cut: the secret never sits inside the kept part.
      referer: 'https://a/?token…[cut 15 chars]',
      'x-long': `${'y'.repeat(16)}…[cut 4 chars]`,
      [`${'n'.repeat(16)}…[cut 4 chars]`]: 'v',
    });
    expect(headersForLog({ referer: 'https://a/?token=secret-value-long' }, new Set(), 24).referer).toBe(
      'https://a/?token=[redact…[cut 3 chars]',
    );
    expect(input).toEqual(copy);
  });
});
