import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Decision } from '../../src/decision.js';
import { decisionToCheckResponse } from '../../src/envoy/check-response.js';
import { PROTO_DIR, PROTO_LOADER_OPTIONS } from '../../src/envoy/protos.js';

const base = { decisionId: 'd-1', version: 'v7', policies: [], headers: {} };

describe('decisionToCheckResponse', () => {
  const rows: { name: string; decision: Decision; expected: Record<string, unknown> }[] = [
    {
      name: 'allow is gRPC OK with an ok_response',
      decision: { ...base, kind: 'allow', reason: 'allowed', status: 200, message: 'allowed', policies: ['p'] },
      expected: { status: { code: 0 }, ok_response: { headers: [] } },
    },
    {
      name: 'deny is PERMISSION_DENIED with the HTTP status',
      decision: {
        ...base,
        kind: 'deny',
        reason: 'policy_forbid',
        status: 503,
        message: 'maintenance',
        policies: ['lock'],
        headers: { 'retry-after': '120' },
      },
      expected: { status: { code: 7, message: 'maintenance' }, denied_response: { status: { code: 503 } } },
    },
    {
      name: 'malformed request is a 400 deny',
      decision: {
        ...base,
        kind: 'deny',
        reason: 'malformed_request',
        status: 400,
        message: 'CheckRequest has no attributes',
      },
      expected: { status: { code: 7 }, denied_response: { status: { code: 400 } } },
    },
  ];
  for (const row of rows) {
    it(row.name, () => expect(decisionToCheckResponse(row.decision)).toMatchObject(row.expected));
  }

  it('deny carries a JSON body, content-type and retry-after, all overwriting', () => {
    const res = decisionToCheckResponse({
      ...base,
      kind: 'deny',
      reason: 'policy_forbid',
      status: 503,
      message: 'down',
      policies: ['a', 'b'],
      headers: { 'retry-after': '60' },
    });
    expect(JSON.parse(res.denied_response!.body)).toEqual({
      decision: 'deny',
      message: 'down',
      policies: ['a', 'b'],
      decision_id: 'd-1',
    });
    expect(res.denied_response!.headers).toEqual([
      {
        header: { key: 'content-type', value: 'application/json' },
        append: { value: false },
        append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
      },
      {
        header: { key: 'retry-after', value: '60' },
        append: { value: false },
        append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
      },
    ]);
  });

  it('dynamic metadata carries the decision id, policy version, decision, reason and policies', () => {
    const res = decisionToCheckResponse({ ...base, kind: 'allow', reason: 'allowed', status: 200, message: 'allowed' });
    expect(res.dynamic_metadata).toEqual({
      fields: {
        decision_id: { stringValue: 'd-1' },
        policy_version: { stringValue: 'v7' },
        decision: { stringValue: 'allow' },
        reason: { stringValue: 'allowed' },
        policies: { stringValue: '' },
      },
    });
  });

  it('dynamic metadata names the principal, the mode and what Envoy was told', () => {
    const res = decisionToCheckResponse(
      { ...base, kind: 'allow', reason: 'no_permit', status: 200, message: 'dry run', policies: ['a', 'b'] },
      { principal: { type: 'User', id: 'alice' }, mode: 'high-alert', outcome: 'dry_run_allow' },
    );
    expect(res.dynamic_metadata).toEqual({
      fields: {
        decision_id: { stringValue: 'd-1' },
        policy_version: { stringValue: 'v7' },
        decision: { stringValue: 'dry_run_allow' },
        reason: { stringValue: 'no_permit' },
        policies: { stringValue: 'a,b' },
        principal_type: { stringValue: 'User' },
        principal_id: { stringValue: 'alice' },
        mode: { stringValue: 'high-alert' },
      },
    });
  });

  it('an allow with effects fills every OkHttpResponse field it uses', () => {
    const res = decisionToCheckResponse({
      ...base,
      kind: 'allow',
      reason: 'allowed',
      status: 200,
      message: 'allowed',
      headers: { 'x-user-id': 'alice' },
      headersToRemove: ['cookie'],
      queryParametersToRemove: ['access_token'],
      responseHeaders: { 'cache-control': 'no-store' },
    });
    const overwrite = { append: { value: false }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' };
    expect(res.ok_response).toEqual({
      headers: [{ header: { key: 'x-user-id', value: 'alice' }, ...overwrite }],
      headers_to_remove: ['cookie'],
      query_parameters_to_remove: ['access_token'],
      response_headers_to_add: [{ header: { key: 'cache-control', value: 'no-store' }, ...overwrite }],
    });
  });
});

/**
 * Field numbers are the wire contract with Envoy; a renumbered field would
 * decode as nothing on Envoy's side. Numbers from Envoy's API reference
 * (envoy.service.auth.v3.OkHttpResponse, CheckResponse, config.core.v3.QueryParameter).
 */
describe('our protos match Envoy field numbers', () => {
  const fieldsOf = (message: string): Record<string, number> => {
    const def = protoLoader.loadSync(
      path.join(PROTO_DIR, 'envoy/service/auth/v3/external_auth.proto'),
      PROTO_LOADER_OPTIONS,
    );
    const type = (def[message] as { type: { field: { name: string; number: number }[] } }).type;
    return Object.fromEntries(type.field.map((f) => [f.name, f.number]));
  };
  const rows = [
    {
      message: 'envoy.service.auth.v3.OkHttpResponse',
      expected: {
        headers: 2,
        dynamic_metadata: 3,
        headers_to_remove: 5,
        response_headers_to_add: 6,
        query_parameters_to_set: 7,
        query_parameters_to_remove: 8,
      },
    },
    {
      message: 'envoy.service.auth.v3.CheckResponse',
      expected: { status: 1, denied_response: 2, ok_response: 3, dynamic_metadata: 4, error_response: 5 },
    },
    { message: 'envoy.service.auth.v3.DeniedHttpResponse', expected: { status: 1, headers: 2, body: 3 } },
    {
      message: 'envoy.config.core.v3.HeaderValueOption',
      expected: { header: 1, append: 2, append_action: 3, keep_empty_value: 4 },
    },
    { message: 'envoy.config.core.v3.QueryParameter', expected: { key: 1, value: 2 } },
  ];
  for (const row of rows) it(row.message, () => expect(fieldsOf(row.message)).toEqual(row.expected));
});
