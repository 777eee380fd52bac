/**
 * Policies reading the request body through the real server: a real grpc-js
 * client sends CheckRequests with `body` / `raw_body` as Envoy does, Cedar
 * decides, and the decision cache keys on the body only where a policy reads it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { authorizationService } from '../../src/envoy/protos.js';
import { simpleRequestToCheckRequest, type SimpleRequest } from '../../src/envoy/simple-request.js';
import type { WireCheckRequest, WireCheckResponse } from '../../src/envoy/wire-types.js';
import { readCheckResponse, type RemoteAnswer } from '../../src/cli/remote-check.js';
import { copyExamplePolicies, policyDir, removeDir } from '../support/policy-dir.js';
import { metricValue } from '../support/admin-http.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const ORDERS = 'spiffe://cluster.local/ns/shop/sa/orders';
const JSON_HEADERS = { 'content-type': 'application/json' };
const order = (body: string | undefined, headers: Record<string, string> = JSON_HEADERS): SimpleRequest => ({
  method: 'POST',
  path: '/orders',
  host: 'orders',
  principal: FRONTEND,
  destinationPrincipal: ORDERS,
  headers,
  body,
});

class RawClient {
  private readonly client: InstanceType<ReturnType<typeof authorizationService>>;
  constructor(port: number) {
    this.client = new (authorizationService())(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  }
  check(r: SimpleRequest | WireCheckRequest): Promise<RemoteAnswer> {
    return new Promise((resolve, reject) =>
      this.client.Check(simpleRequestToCheckRequest(r), (err: grpc.ServiceError | null, res: WireCheckResponse) =>
        err ? reject(err) : resolve(readCheckResponse(res)),
      ),
    );
  }
  close(): void {
    this.client.close();
  }
}

describe('the example policies read context.json on POST /orders', () => {
  let dir: string;
  let server: TestServer;
  let client: RawClient;
  beforeAll(async () => {
    dir = copyExamplePolicies();
    server = await startTestServer({ policies: dir, bodyMaxBytes: 1024 });
    client = new RawClient(server.grpcPort);
  });
  afterAll(async () => {
    client.close();
    await server.close();
    removeDir(dir);
  });

  it('denies an order of 500 units with 422 and allows 5', async () => {
    expect(await client.check(order('{"item":"tea","quantity":500}'))).toMatchObject({
      allowed: false,
      httpStatus: 422,
      policies: ['orders-quantity-limit'],
    });
    expect(await client.check(order('{"item":"tea","quantity":5}'))).toMatchObject({ allowed: true });
    expect(await client.check(order('{"item":"tea","quantity":101}'))).toMatchObject({
      allowed: false,
      httpStatus: 422,
    });
    expect(await client.check(order('{"item":"tea","quantity":100}'))).toMatchObject({ allowed: true });
  });

  it('reads raw_body bytes (pack_as_bytes) like the body string', async () => {
    const req = simpleRequestToCheckRequest(order(undefined));
    req.attributes!.request!.http!.raw_body = Buffer.from('{"quantity":500}');
    expect(await client.check(req)).toMatchObject({ allowed: false, httpStatus: 422 });
    req.attributes!.request!.http!.raw_body = Buffer.from('{"quantity":5}');
    expect(await client.check(req)).toMatchObject({ allowed: true });
  });

  it('refuses a body Envoy cut short (x-envoy-auth-partial-body: true), and one over bodyMaxBytes', async () => {
    expect(
      await client.check(order('{"quantity":5', { ...JSON_HEADERS, 'x-envoy-auth-partial-body': 'true' })),
    ).toMatchObject({ allowed: false, httpStatus: 413, policies: ['orders-body-truncated'] });
    const huge = JSON.stringify({ quantity: 5, note: 'x'.repeat(2000) });
    expect(await client.check(order(huge))).toMatchObject({
      allowed: false,
      httpStatus: 413,
      policies: ['orders-body-truncated'],
    });
  });

  it('a body that is not JSON, or deeper than the limit, gives no context.json: the quantity rule does not apply', async () => {
    expect(await client.check(order('{"quantity":500'))).toMatchObject({ allowed: true });
    expect(await client.check(order('{"quantity":500}', { 'content-type': 'text/plain' }))).toMatchObject({
      allowed: true,
    });
    const deep = `{"quantity":500,"x":${'['.repeat(40)}${']'.repeat(40)}}`;
    expect(await client.check(order(deep))).toMatchObject({ allowed: true });
  });

  it('without a body the orders rules do not apply (Envoy sent none)', async () => {
    expect(await client.check(order(undefined, {}))).toMatchObject({ allowed: true });
  });
});

describe('the body costs nothing in a set that never reads it, and keys the cache only where a slice does', () => {
  const POLICIES = {
    'policies.cedar': `
      @id("plain") permit (principal, action == Action::"GET", resource == Service::"plain");
      @id("plain-post") permit (principal, action == Action::"POST", resource == Service::"plain");
      @id("body-reader") permit (principal, action == Action::"POST", resource == Service::"reader")
        when { context has json && context.json has n && context.json.n < 10 };
      @id("text-reader") forbid (principal, action == Action::"PUT", resource == Service::"reader")
        when { context has body && context.body like "*DROP*" };
      @id("put-ok") permit (principal, action == Action::"PUT", resource == Service::"reader");`,
  };
  let dir: string;
  let server: TestServer;
  let client: RawClient;
  const req = (service: string, method: string, body: string): SimpleRequest => ({
    method,
    path: '/x',
    host: service,
    principal: FRONTEND,
    headers: JSON_HEADERS,
    body,
  });
  const lookups = async (result: string) =>
    metricValue(await server.metricsText(), `authz_decision_cache_lookups_total{result="${result}"}`);

  beforeAll(async () => {
    dir = policyDir(POLICIES);
    server = await startTestServer({ policies: dir, decisionCacheEntries: 1000, logLevel: 'warn' });
    client = new RawClient(server.grpcPort);
  });
  afterAll(async () => {
    client.close();
    await server.close();
    removeDir(dir);
  });

  it('a set that never reads the body parses none; in a set that does, requests differing only in an unread body share a cache entry', async () => {
    const plainDir = policyDir({ 'policies.cedar': POLICIES['policies.cedar'].split('@id("body-reader")')[0]! });
    const plain = await startTestServer({ policies: plainDir, decisionCacheEntries: 1000, logLevel: 'warn' });
    const plainClient = new RawClient(plain.grpcPort);
    const original = JSON.parse;
    let parses = 0;
    JSON.parse = ((text: string, reviver?: Parameters<typeof JSON.parse>[1]) => (
      text.includes('"n"') && parses++, original(text, reviver)
    )) as typeof JSON.parse;
    try {
      expect(await plainClient.check(req('plain', 'POST', '{"n":1}'))).toMatchObject({ allowed: true });
      expect(await plainClient.check(req('plain', 'POST', '{"n":2}'))).toMatchObject({ allowed: true });
      expect(parses).toBe(0);
      // The set with body readers: the plain slice does not key on the body.
      const hits = await lookups('hit');
      expect(await client.check(req('plain', 'POST', '{"n":1}'))).toMatchObject({ allowed: true });
      expect(await client.check(req('plain', 'POST', '{"n":2}'))).toMatchObject({ allowed: true });
      expect(await lookups('hit')).toBe(hits + 1);
    } finally {
      JSON.parse = original;
      plainClient.close();
      await plain.close();
      removeDir(plainDir);
    }
  });

  it('a slice that reads context.json is keyed on it: a cached allow never answers another body', async () => {
    expect(await client.check(req('reader', 'POST', '{"n":3}'))).toMatchObject({ allowed: true });
    expect(await client.check(req('reader', 'POST', '{"n":30}'))).toMatchObject({ allowed: false });
    const hits = await lookups('hit');
    expect(await client.check(req('reader', 'POST', '{"n":3}'))).toMatchObject({ allowed: true });
    expect(await lookups('hit')).toBe(hits + 1);
  });

  it('a slice that only tests context.body with like is keyed on the outcome', async () => {
    expect(await client.check(req('reader', 'PUT', 'select 1'))).toMatchObject({ allowed: true });
    expect(await client.check(req('reader', 'PUT', 'x; DROP TABLE orders'))).toMatchObject({
      allowed: false,
      policies: ['text-reader'],
    });
    const hits = await lookups('hit');
    expect(await client.check(req('reader', 'PUT', 'select 2'))).toMatchObject({ allowed: true });
    expect(await lookups('hit')).toBe(hits + 1);
  });
});
