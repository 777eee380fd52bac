/**
 * Envoy's HTTP ext_authz protocol over real HTTP (`serve --http-listen`):
 * every answer equals what the gRPC Check gives for the same request, the
 * caller's identity comes only from the XFCC header Envoy sets, the
 * path_prefix is removed, and denies carry status, headers and body.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simpleRequestToCheckRequest, type SimpleRequest } from '../../src/envoy/simple-request.js';
import { connectAuthz, type AuthzClient } from '../support/grpc-client.js';
import { EXAMPLE_POLICIES } from '../support/policy-dir.js';
import { FRONTEND, ORDERS } from '../support/requests.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

const PREFIX = '/ext-authz';
let server: TestServer;
let grpcClient: AuthzClient;

beforeAll(async () => {
  server = await startTestServer({ policies: EXAMPLE_POLICIES, httpListen: '127.0.0.1:0', httpPathPrefix: PREFIX });
  grpcClient = connectAuthz(server.grpcPort);
});
afterAll(async () => {
  grpcClient.close();
  await server.close();
});

interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** What Envoy's HTTP ext_authz client sends: the original method, prefix + path, Host and the allowed headers. */
function envoyHttpCheck(r: SimpleRequest, extraHeaders: Record<string, string> = {}): Promise<HttpAnswer> {
  const headers: Record<string, string> = { host: r.host ?? '', ...(r.headers ?? {}), ...extraHeaders };
  if (r.principal)
    headers['x-forwarded-client-cert'] = `By=spiffe://cluster.local/ns/shop/sa/orders;Hash=ab12;URI=${r.principal}`;
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: server.httpPort, method: r.method ?? 'GET', path: PREFIX + (r.path ?? '/'), headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const withoutId = (body: string): unknown => {
  if (!body) return body;
  const { decision_id: _id, ...rest } = JSON.parse(body) as Record<string, unknown>;
  return rest;
};

const cases: { name: string; request: SimpleRequest; status: number }[] = [
  {
    name: 'frontend reads an order',
    request: { method: 'GET', path: '/orders/17', host: 'orders', principal: FRONTEND },
    status: 200,
  },
  {
    name: 'an anonymous caller on orders',
    request: { method: 'GET', path: '/orders/17', host: 'orders' },
    status: 401,
  },
  {
    name: 'orders charges a payment',
    request: { method: 'POST', path: '/payments/charge', host: 'payments', principal: ORDERS },
    status: 200,
  },
  {
    name: 'frontend charges a payment',
    request: { method: 'POST', path: '/payments/charge', host: 'payments', principal: FRONTEND },
    status: 403,
  },
  {
    name: 'a payment deleted',
    request: { method: 'DELETE', path: '/payments/9', host: 'payments:8080', principal: ORDERS },
    status: 405,
  },
  {
    name: 'a query string',
    request: { method: 'GET', path: '/orders/17?expand=items', host: 'orders', principal: FRONTEND },
    status: 200,
  },
];

describe('HTTP ext_authz', () => {
  it.each(cases)('$name: the same answer as the gRPC Check ($status)', async ({ request, status }) => {
    const overHttp = await envoyHttpCheck(request);
    const overGrpc = await grpcClient.check(simpleRequestToCheckRequest({ ...request, time: undefined }));
    expect(overHttp.status).toBe(status);
    const grpcStatus = overGrpc.status.code === 0 ? 200 : overGrpc.denied_response!.status.code;
    expect(overHttp.status).toBe(grpcStatus);
    expect(withoutId(overHttp.body)).toEqual(withoutId(overGrpc.denied_response?.body ?? ''));
    for (const h of overGrpc.ok_response?.headers ?? overGrpc.denied_response?.headers ?? []) {
      expect(overHttp.headers[h.header.key.toLowerCase()], h.header.key).toBe(h.header.value);
    }
    expect(overHttp.headers['x-authz-decision-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(overHttp.headers['x-authz-policy-version']).toBe(server.policySet.current!.version);
  });

  it('a deny carries the JSON body and content-type Envoy sends back to the client', async () => {
    const r = await envoyHttpCheck({ method: 'POST', path: '/payments/charge', host: 'payments', principal: FRONTEND });
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.body)).toMatchObject({
      decision: 'deny',
      message: 'no policy permits this request',
      policies: [],
    });
  });

  it('the identity is the URI of the last XFCC element: the certificate the asking proxy saw', async () => {
    const xfcc = `By=spiffe://a;URI=${FRONTEND},By=spiffe://cluster.local/ns/shop/sa/orders;Hash=1;URI="spiffe://cluster.local/ns/shop/sa/intruder"`;
    const r = await envoyHttpCheck(
      { method: 'GET', path: '/orders/1', host: 'orders' },
      { 'x-forwarded-client-cert': xfcc },
    );
    expect(r.status).toBe(403);
    const line = server.logLines().find((l) => l.decision_id === r.headers['x-authz-decision-id'])!;
    expect(line.principal).toBe('Workload::"spiffe://cluster.local/ns/shop/sa/intruder"');
  });

  it('no other header names the caller: without XFCC the caller is anonymous', async () => {
    const r = await envoyHttpCheck({
      method: 'GET',
      path: '/orders/1',
      host: 'orders',
      headers: { 'x-spiffe-id': FRONTEND, 'x-forwarded-user': FRONTEND },
    });
    expect(r.status).toBe(401);
  });

  it('the path is decided without the path_prefix', async () => {
    const r = await envoyHttpCheck({ method: 'GET', path: '/orders/17', host: 'orders', principal: FRONTEND });
    const line = server.logLines().find((l) => l.decision_id === r.headers['x-authz-decision-id'])!;
    expect(line.path).toBe('/orders/17');
  });
});
