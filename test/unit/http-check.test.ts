import { describe, expect, it } from 'vitest';
import { httpCheckToCheckRequest, stripPathPrefix, xfccPrincipal } from '../../src/envoy/http-check-request.js';
import { checkResponseToHttp } from '../../src/envoy/http-check-response.js';

describe('HTTP ext_authz request mapping', () => {
  it.each([
    {
      name: 'one element',
      xfcc: 'By=spiffe://b;Hash=1;URI=spiffe://cluster.local/ns/shop/sa/frontend',
      expected: 'spiffe://cluster.local/ns/shop/sa/frontend',
    },
    {
      name: 'the last of several elements',
      xfcc: 'URI=spiffe://far,By=x;URI=spiffe://near',
      expected: 'spiffe://near',
    },
    {
      name: 'a quoted value holding , and ;',
      xfcc: 'URI=spiffe://far,Subject="CN=a,O=b;c";URI="spiffe://near"',
      expected: 'spiffe://near',
    },
    { name: 'a lower-case key', xfcc: 'uri=spiffe://x', expected: 'spiffe://x' },
    { name: 'no URI in the last element', xfcc: 'URI=spiffe://far,By=spiffe://b;Hash=1', expected: undefined },
    { name: 'empty', xfcc: '', expected: undefined },
  ])('xfccPrincipal: $name', ({ xfcc, expected }) => expect(xfccPrincipal(xfcc)).toBe(expected));

  it.each([
    { url: '/authz/orders/1', prefix: '/authz', expected: '/orders/1' },
    { url: '/authz/orders/1', prefix: '/authz/', expected: '/orders/1' },
    { url: '/authz?x=1', prefix: '/authz', expected: '/?x=1' },
    { url: '/authz', prefix: '/authz', expected: '/' },
    { url: '/authzother/1', prefix: '/authz', expected: '/authzother/1' },
    { url: '/orders/1', prefix: '', expected: '/orders/1' },
  ])('stripPathPrefix($url, $prefix) = $expected', ({ url, prefix, expected }) =>
    expect(stripPathPrefix(url, prefix)).toBe(expected),
  );

  it('builds the CheckRequest the gRPC service would get', () => {
    const req = httpCheckToCheckRequest(
      {
        method: 'post',
        url: '/p/orders?id=1',
        headers: {
          host: 'orders:8080',
          'x-forwarded-client-cert': 'URI=spiffe://a',
          'x-multi': ['1', '2'],
          'x-request-id': 'r1',
        },
      },
      { pathPrefix: '/p', identityHeader: 'x-forwarded-client-cert' },
      1_790_000_000_123,
    );
    expect(req.attributes!.source).toEqual({ principal: 'spiffe://a' });
    expect(req.attributes!.request!.http).toMatchObject({
      method: 'POST',
      path: '/orders?id=1',
      host: 'orders:8080',
      id: 'r1',
    });
    expect(req.attributes!.request!.http!.headers).toMatchObject({
      ':authority': 'orders:8080',
      ':path': '/orders?id=1',
      'x-multi': '1,2',
    });
    expect(req.attributes!.request!.time).toEqual({ seconds: '1790000000', nanos: 123_000_000 });
  });

  it('takes no identity when the identity header is switched off', () => {
    const req = httpCheckToCheckRequest(
      { method: 'GET', url: '/', headers: { host: 'h', 'x-forwarded-client-cert': 'URI=spiffe://a' } },
      { pathPrefix: '', identityHeader: '' },
      0,
    );
    expect(req.attributes!.source).toEqual({});
  });
});

describe('HTTP ext_authz response mapping', () => {
  it('a deny never reads as 200', () => {
    expect(
      checkResponseToHttp({ status: { code: 7 }, denied_response: { status: { code: 0 }, headers: [], body: '' } })
        .status,
    ).toBe(403);
  });
  it('an allow lists the headers to remove upstream for Envoy', () => {
    const a = checkResponseToHttp({
      status: { code: 0 },
      ok_response: { headers: [{ header: { key: 'x-user', value: 'alice' } }], headers_to_remove: ['authorization'] },
    });
    expect(a).toEqual({
      status: 200,
      headers: { 'x-user': 'alice', 'x-envoy-auth-headers-to-remove': 'authorization' },
      body: '',
    });
  });
});
