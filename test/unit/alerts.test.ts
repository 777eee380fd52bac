import { describe, expect, it } from 'vitest';
import { AlertModeState } from '../../src/alerts/alert-mode-state.js';
import { parseAlertPayload, type ReceivedAlert } from '../../src/alerts/alertmanager-payload.js';
import { parseAlertRules } from '../../src/alerts/alert-rules.js';

const RULES = parseAlertRules(
  'rules:\n  - alert: DDoSSuspected\n    labels: { severity: critical }\n    mode: high-alert\n',
);

describe('rules file', () => {
  const rows = [
    { name: 'not YAML', text: 'rules: [', error: /^rules file: not valid YAML: / },
    {
      name: 'no rules key',
      text: 'alerts: []',
      error: /^rules file: rules: Invalid input: expected array, received undefined$/,
    },
    { name: 'empty list', text: 'rules: []', error: /^rules file: rules: expected at least one rule$/ },
    {
      name: 'normal is not an alert mode',
      text: 'rules: [{ alert: X, mode: normal }]',
      error: /^rules file: rules\[0\]\.mode: expected one of high-alert$/,
    },
    {
      name: 'a misspelt key',
      text: 'rules: [{ alert: X, mode: high-alert, lables: {} }]',
      error: /^rules file: rules\[0\]: Unrecognized key: "lables"$/,
    },
    {
      name: 'a label value that is not a string',
      text: 'rules: [{ alert: X, mode: high-alert, labels: { severity: [1] } }]',
      error: /^rules file: rules\[0\]\.labels\.severity: /,
    },
  ];
  for (const row of rows)
    it(`${row.name}: refused, naming the field`, () => expect(() => parseAlertRules(row.text)).toThrow(row.error));
});

describe('Alertmanager payloads', () => {
  const rows = [
    { name: 'not JSON', body: '{', expected: { ok: false, message: 'body is not JSON' } },
    {
      name: 'no alerts array',
      body: '{"status":"firing"}',
      expected: {
        ok: false,
        message: 'not an Alertmanager webhook payload: alerts: Invalid input: expected array, received undefined',
      },
    },
    {
      name: 'an unknown version',
      body: '{"version":"5","status":"firing","alerts":[]}',
      expected: { ok: false, message: 'webhook payload version "5" is not supported (expected "4")' },
    },
  ];
  for (const row of rows) it(row.name, () => expect(parseAlertPayload(row.body)).toEqual(row.expected));

  it('an alert without a fingerprint gets one from its labels, the same for the same labels in any order', () => {
    const a = parseAlertPayload(
      '{"status":"firing","alerts":[{"status":"firing","labels":{"alertname":"A","x":"1"}}]}',
    );
    const b = parseAlertPayload(
      '{"status":"firing","alerts":[{"status":"resolved","labels":{"x":"1","alertname":"A"}}]}',
    );
    if (!a.ok || !b.ok) throw new Error('expected both to parse');
    expect(a.payload.alerts[0].fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(a.payload.alerts[0].fingerprint).toBe(b.payload.alerts[0].fingerprint);
  });
});

const ddos = (status: 'firing' | 'resolved', fingerprint: string, severity = 'critical'): ReceivedAlert => ({
  name: 'DDoSSuspected',
  status,
  fingerprint,
  labels: { alertname: 'DDoSSuspected', severity },
});

describe('mode wanted by the alerts, with hold-down', () => {
  it('a sequence: fire, flap inside the hold-down, resolve, return after the hold-down', () => {
    const s = new AlertModeState(RULES, 60_000);
    expect(s.wanted(0)).toEqual({ kind: 'idle' });
    expect(s.observe([ddos('firing', 'w', 'warning')], 0)).toMatchObject({
      mapped: [],
      unmapped: [{ fingerprint: 'w' }],
    });
    expect(s.wanted(0)).toEqual({ kind: 'idle' });
    s.observe([ddos('firing', 'a')], 1_000);
    expect(s.wanted(1_000)).toMatchObject({ kind: 'engage', mode: 'high-alert' });
    s.observe([ddos('resolved', 'a')], 10_000);
    expect(s.wanted(10_000)).toMatchObject({ kind: 'hold', at: 70_000 });
    // It fires again within the hold-down: high-alert stays, and the hold-down starts over at the next resolution.
    s.observe([ddos('firing', 'a')], 30_000);
    expect(s.wanted(69_999)).toMatchObject({ kind: 'engage' });
    s.observe([ddos('resolved', 'a')], 40_000);
    expect(s.wanted(99_999)).toMatchObject({ kind: 'hold', at: 100_000 });
    expect(s.wanted(100_000)).toMatchObject({ kind: 'return', resolved: [{ fingerprint: 'a' }, { fingerprint: 'a' }] });
    s.returned();
    expect(s.wanted(200_000)).toEqual({ kind: 'idle' });
  });

  it('normal waits for every mapped alert: one resolving while another fires keeps the mode', () => {
    const s = new AlertModeState(RULES, 0);
    s.observe([ddos('firing', 'a'), ddos('firing', 'b')], 0);
    s.observe([ddos('resolved', 'a')], 1);
    expect(s.wanted(10)).toMatchObject({ kind: 'engage', firing: [{ fingerprint: 'b' }] });
    s.observe([ddos('resolved', 'b')], 20);
    expect(s.wanted(20)).toMatchObject({ kind: 'return' });
  });

  it('a resolution of an alert never seen firing (e.g. after a restart) engages nothing', () => {
    const s = new AlertModeState(RULES, 0);
    s.observe([ddos('resolved', 'z')], 0);
    expect(s.wanted(0)).toEqual({ kind: 'idle' });
  });
});
