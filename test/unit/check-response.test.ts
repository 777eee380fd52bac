import { describe, expect, it } from 'vitest';
import type { Decision } from '../../src/decision.js';
import { decisionToCheckResponse } from '../../src/envoy/check-response.js';

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
      decision: { ...base, kind: 'deny', reason: 'policy_forbid', status: 503, message: 'maintenance', policies: ['lock'], headers: { 'retry-after': '120' } },
      expected: { status: { code: 7, message: 'maintenance' }, denied_response: { status: { code: 503 } } },
    },
    {
      name: 'malformed request is a 400 deny',
      decision: { ...base, kind: 'deny', reason: 'malformed_request', status: 400, message: 'CheckRequest has no attributes' },
      expected: { status: { code: 7 }, denied_response: { status: { code: 400 } } },
    },
  ];
  for (const row of rows) {
    it(row.name, () => expect(decisionToCheckResponse(row.decision)).toMatchObject(row.expected));
  }

  it('deny carries a JSON body, content-type and retry-after, all overwriting', () => {
    const res = decisionToCheckResponse({ ...base, kind: 'deny', reason: 'policy_forbid', status: 503, message: 'down', policies: ['a', 'b'], headers: { 'retry-after': '60' } });
    expect(JSON.parse(res.denied_response!.body)).toEqual({ decision: 'deny', message: 'down', policies: ['a', 'b'], decision_id: 'd-1' });
    expect(res.denied_response!.headers).toEqual([
      { header: { key: 'content-type', value: 'application/json' }, append: { value: false }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: 'retry-after', value: '60' }, append: { value: false }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    ]);
  });

  it('dynamic metadata carries the decision id, policy version, reason code and policies', () => {
    const res = decisionToCheckResponse({ ...base, kind: 'allow', reason: 'allowed', status: 200, message: 'allowed', policies: ['a', 'b'] });
    expect(res.dynamic_metadata).toEqual({
      fields: { decision_id: { stringValue: 'd-1' }, policy_version: { stringValue: 'v7' }, reason: { stringValue: 'allowed' }, policies: { stringValue: 'a,b' } },
    });
  });
});
