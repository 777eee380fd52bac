import { NO_BODY } from '../../src/envoy/request-body.js';
import { describe, expect, it } from 'vitest';
import { buildContext, inputToCedarRequest } from '../../src/pipeline/cedar-request.js';
import { compileBundle } from '../../src/bundle/active-bundle.js';
import { parseSpiffeId, workloadPrincipal } from '../../src/context/principal.js';
import { checkRequestToInput } from '../../src/envoy/check-request.js';
import type { RequestModel } from '../../src/envoy/request-model.js';

function input(over: Partial<RequestModel> = {}): RequestModel {
  return {
    kind: 'http',
    method: 'GET',
    path: '/x',
    rawPath: '/x',
    query: {},
    host: 'svc',
    scheme: 'http',
    protocol: 'HTTP/1.1',
    headers: {},
    headerCount: 0,
    source: { principal: '', service: '' },
    destination: { principal: '', service: '' },
    timeMs: Date.parse('2026-01-02T03:04:05.678Z'),
    contextExtensions: {},
    service: 'svc',
    sni: '',
    requestId: '',
    filterMetadata: {},
    body: NO_BODY,
    ...over,
  };
}

describe('SPIFFE ids', () => {
  const rows = [
    {
      id: 'spiffe://cluster.local/ns/shop/sa/frontend',
      expected: { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'frontend' },
    },
    { id: 'spiffe://example.org/workload', expected: {} },
    { id: 'spiffe://cluster.local/ns/untrusted/sa/x/ns/shop', expected: {} },
    { id: 'spiffe://cluster.local/sa/x/ns/shop', expected: {} },
    { id: 'spiffe://cluster.local/ns/shop/sa/', expected: {} },
    { id: 'spiffe://cluster.local/ns/../sa/x', expected: {} },
    { id: 'spiffe://Cluster.Local/ns/shop/sa/x', expected: {} },
    { id: 'spiffe://cluster.local/ns/shop/sa/x/', expected: {} },
    { id: 'spiffe://cluster.local/ns/shop/sa/x?ns=y', expected: {} },
    { id: 'SPIFFE://cluster.local/ns/shop/sa/x', expected: {} },
    { id: 'not-spiffe', expected: {} },
  ];
  for (const row of rows) it(row.id, () => expect(parseSpiffeId(row.id)).toEqual(row.expected));

  it('no source principal means Anonymous::"anonymous"', () => {
    expect(workloadPrincipal('')).toMatchObject({ type: 'Anonymous', id: 'anonymous' });
  });
});

describe('inputToCedarRequest', () => {
  const set = compileBundle({
    version: 't',
    policies: [{ name: 'p.cedar', text: 'permit(principal, action, resource);' }],
    entities: [
      { uid: { type: 'Group', id: 'g' }, attrs: {}, parents: [{ type: 'Group', id: 'root' }] },
      { uid: { type: 'Group', id: 'root' }, attrs: {}, parents: [] },
      { uid: { type: 'Group', id: 'unrelated' }, attrs: {}, parents: [] },
      {
        uid: { type: 'Workload', id: 'spiffe://td/ns/a/sa/b' },
        attrs: { team: 'x' },
        parents: [{ type: 'Group', id: 'g' }],
      },
      { uid: { type: 'Service', id: 'svc' }, attrs: { tier: 'core' }, parents: [] },
    ],
  });

  const rows = [
    {
      name: 'GET is in Action::"read"',
      in: input({ method: 'GET' }),
      action: 'GET',
      parents: [{ type: 'Action', id: 'read' }],
    },
    {
      name: 'DELETE is in Action::"write"',
      in: input({ method: 'DELETE' }),
      action: 'DELETE',
      parents: [{ type: 'Action', id: 'write' }],
    },
    // No entity at all: Cedar sees an action in no group (and `action.x` errors, as on an entity without it).
    {
      name: 'unknown methods have no group',
      in: input({ method: 'PROPFIND' }),
      action: 'PROPFIND',
      parents: undefined,
    },
    {
      name: 'network checks are Action::"connect"',
      in: input({ kind: 'network', method: '' }),
      action: 'connect',
      parents: [],
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const req = inputToCedarRequest(row.in, set);
      expect(req.action).toEqual({ type: 'Action', id: row.action });
      expect(req.entities.find((e) => (e.uid as { type: string; id: string }).id === row.action)?.parents).toEqual(
        row.parents,
      );
    });
  }

  it('is the whole input: every entity, the principal merged with its static entry', () => {
    const req = inputToCedarRequest(input({ source: { principal: 'spiffe://td/ns/a/sa/b', service: '' } }), set);
    const ids = req.entities.map((e) => `${(e.uid as { type: string }).type}::${(e.uid as { id: string }).id}`);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(
      expect.arrayContaining([
        'Action::GET',
        'Action::read',
        'Action::connect',
        'Group::g',
        'Group::root',
        'Group::unrelated',
        'Service::svc',
        'Workload::spiffe://td/ns/a/sa/b',
      ]),
    );
    const principal = req.entities.find((e) => (e.uid as { type: string }).type === 'Workload')!;
    expect(principal.attrs).toEqual({ team: 'x', trustDomain: 'td', namespace: 'a', serviceAccount: 'b' });
    expect(principal.parents).toEqual([{ type: 'Group', id: 'g' }]);
  });

  it('context holds every documented field with Cedar extension values', () => {
    const r = checkRequestToInput({
      attributes: {
        source: {
          address: { socket_address: { address: '10.0.0.1', port_value: 1234 } },
          principal: 'spiffe://td/ns/a/sa/b',
        },
        request: {
          time: { seconds: '1767323045' },
          http: {
            method: 'GET',
            path: '/p?q=1',
            host: 'Svc:81',
            scheme: 'https',
            protocol: 'HTTP/2',
            headers: { 'x-a': 'b' },
          },
        },
        context_extensions: { service: 'svc' },
      },
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(buildContext(r.input)).toEqual({
      method: 'GET',
      path: '/p',
      rawPath: '/p',
      query: { q: '1' },
      host: 'svc',
      scheme: 'https',
      protocol: 'HTTP/2',
      headers: { 'x-a': 'b' },
      source: { principal: 'spiffe://td/ns/a/sa/b', ip: { __extn: { fn: 'ip', arg: '10.0.0.1' } }, port: 1234 },
      destination: { principal: '' },
      time: { __extn: { fn: 'datetime', arg: '2026-01-02T03:04:05.000Z' } },
      contextExtensions: { service: 'svc' },
    });
  });
});
