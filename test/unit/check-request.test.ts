import { describe, expect, it } from 'vitest';
import { checkRequestToInput, MAX_HEADERS } from '../../src/envoy/check-request.js';
import type { WireCheckRequest } from '../../src/envoy/wire-types.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const opts = { nowMs: () => NOW };

function http(fields: Record<string, unknown>, attrs: Record<string, unknown> = {}): WireCheckRequest {
  return {
    attributes: { request: { http: { method: 'GET', path: '/', host: 'svc', ...fields } }, ...attrs },
  } as WireCheckRequest;
}

describe('checkRequestToInput: HTTP requests', () => {
  const rows: { name: string; req: WireCheckRequest; expected: Record<string, unknown> }[] = [
    {
      name: 'path and query are split, first query value wins',
      req: http({ path: '/a/b?x=1&x=2&y=%20z' }),
      expected: { path: '/a/b', query: { x: '1', y: ' z' } },
    },
    {
      name: 'the query field wins over a query in the path',
      req: http({ path: '/a?from=path', query: 'from=field' }),
      expected: { path: '/a', query: { from: 'field' } },
    },
    {
      name: 'host is lowercased and loses its port',
      req: http({ host: 'Orders.Shop:8080' }),
      expected: { host: 'orders.shop', service: 'orders.shop' },
    },
    {
      name: 'IPv6 host keeps its address without brackets or port',
      req: http({ host: '[2001:db8::1]:443' }),
      expected: { host: '2001:db8::1' },
    },
    {
      name: 'context_extensions.service names the resource',
      req: http({ host: 'a.example' }, { context_extensions: { service: 'orders' } }),
      expected: { service: 'orders', host: 'a.example' },
    },
    { name: 'method is upper-cased', req: http({ method: 'post' }), expected: { method: 'POST' } },
    {
      name: 'header names lowercased, pseudo-headers left out',
      req: http({ headers: { ':authority': 'svc', 'X-User': 'alice', accept: '*/*' } }),
      expected: { headers: { 'x-user': 'alice', accept: '*/*' } },
    },
    {
      name: 'header_map raw values are decoded and merged, repeats joined',
      req: http({
        headers: { a: '1' },
        header_map: {
          headers: [
            { key: 'A', raw_value: Buffer.from('2') },
            { key: 'b', value: 'v' },
          ],
        },
      }),
      expected: { headers: { a: '1,2', b: 'v' } },
    },
    {
      name: 'method, path and host come from pseudo-headers when fields are empty',
      req: {
        attributes: {
          request: {
            http: {
              header_map: {
                headers: [
                  { key: ':method', raw_value: Buffer.from('PUT') },
                  { key: ':path', raw_value: Buffer.from('/x?q=1') },
                  { key: ':authority', raw_value: Buffer.from('Svc:80') },
                ],
              },
            },
          },
        },
      },
      expected: { method: 'PUT', path: '/x', host: 'svc', query: { q: '1' } },
    },
    {
      name: 'request.time is used when present',
      req: http(
        {},
        {
          request: { time: { seconds: '1790000000', nanos: 250000000 }, http: { method: 'GET', path: '/', host: 'h' } },
        },
      ),
      expected: { timeMs: 1790000000250 },
    },
    { name: 'no request.time means now', req: http({}), expected: { timeMs: NOW } },
    {
      name: 'source and destination peers',
      req: http(
        {},
        {
          source: {
            address: { socket_address: { address: '10.1.2.3', port_value: 5000 } },
            principal: 'spiffe://td/ns/a/sa/b',
          },
          destination: { address: { socket_address: { address: '::1', port_value: 80 } } },
        },
      ),
      expected: {
        source: { ip: '10.1.2.3', port: 5000, principal: 'spiffe://td/ns/a/sa/b', service: '' },
        destination: { ip: '::1', port: 80, principal: '', service: '' },
      },
    },
    {
      name: 'a non-IP source address is dropped, not passed to Cedar',
      req: http({}, { source: { address: { socket_address: { address: 'not-an-ip', port_value: 1 } } } }),
      expected: { source: { port: 1, principal: '', service: '' } },
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const r = checkRequestToInput(row.req, opts);
      expect(r.ok).toBe(true);
      if (r.ok) expect(r.input).toMatchObject(row.expected);
    });
  }
});

describe('checkRequestToInput: network (TCP) checks', () => {
  const rows = [
    {
      name: 'SNI names the service at a front proxy (no mesh identity)',
      attrs: { source: { principal: 'spiffe://a' }, destination: {}, tls_session: { sni: 'DB.internal.' } },
      service: 'db.internal',
    },
    {
      name: 'a mesh identity wins over the SNI the caller chose',
      attrs: {
        source: { principal: 'spiffe://a' },
        destination: { principal: 'spiffe://td/ns/db/sa/postgres' },
        tls_session: { sni: 'db.internal' },
      },
      service: 'postgres',
    },
    {
      name: 'a SPIFFE id of another shape names the service by its whole text',
      attrs: { source: {}, destination: { principal: 'spiffe://b' } },
      service: 'spiffe://b',
    },
    {
      name: 'destination principal (service account) when no SNI',
      attrs: { source: {}, destination: { principal: 'spiffe://td/ns/db/sa/postgres' } },
      service: 'postgres',
    },
    {
      name: 'destination address as the last resort',
      attrs: { destination: { address: { socket_address: { address: '10.9.9.9', port_value: 5432 } } } },
      service: '10.9.9.9',
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const r = checkRequestToInput({ attributes: row.attrs } as WireCheckRequest, opts);
      expect(r).toMatchObject({ ok: true, input: { kind: 'network', method: '', service: row.service } });
    });
  }
});

describe('checkRequestToInput: requests too incomplete to decide', () => {
  const rows: { name: string; req: unknown; reason: string; message: RegExp }[] = [
    { name: 'empty CheckRequest', req: {}, reason: 'malformed_request', message: /no attributes/ },
    { name: 'null', req: null, reason: 'malformed_request', message: /no attributes/ },
    {
      name: 'attributes without request or peers',
      req: { attributes: {} },
      reason: 'malformed_request',
      message: /neither/,
    },
    {
      name: 'HTTP without method',
      req: { attributes: { request: { http: { path: '/', host: 'h' } } } },
      reason: 'malformed_request',
      message: /method is missing/,
    },
    {
      name: 'HTTP without path',
      req: { attributes: { request: { http: { method: 'GET', host: 'h' } } } },
      reason: 'malformed_request',
      message: /path is missing/,
    },
    {
      name: 'HTTP without host or service',
      req: { attributes: { request: { http: { method: 'GET', path: '/' } } } },
      reason: 'malformed_request',
      message: /host is missing/,
    },
    {
      name: 'network check with no destination',
      req: { attributes: { source: { principal: 'x' } } },
      reason: 'malformed_request',
      message: /names no destination/,
    },
    {
      name: `more than ${MAX_HEADERS} headers`,
      req: {
        attributes: {
          request: {
            http: {
              method: 'GET',
              path: '/',
              host: 'h',
              headers: Object.fromEntries(Array.from({ length: MAX_HEADERS + 1 }, (_, i) => [`h${i}`, 'v'])),
            },
          },
        },
      },
      reason: 'request_too_large',
      message: /more than 1000 headers/,
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const r = checkRequestToInput(row.req as WireCheckRequest, opts);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.reason).toBe(row.reason);
        expect(r.message).toMatch(row.message);
      }
    });
  }

  it('300 headers are accepted and all kept', () => {
    const headers = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`x-h-${i}`, `v${i}`]));
    const r = checkRequestToInput(http({ headers }), opts);
    expect(r.ok && Object.keys(r.input.headers).length).toBe(300);
  });
});
