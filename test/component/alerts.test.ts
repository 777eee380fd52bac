/**
 * `authz alerts serve` against a real S3 protocol server (s3rver) and a real
 * authz server polling it: Alertmanager payloads (firing, repeated, grouped,
 * resolved, unknown, unauthenticated, malformed) and their effect on
 * anonymous traffic.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readHistory } from '../../src/bundle/store/bundle-history.js';
import { openAlertReceiver, type RunningAlertReceiver } from '../../src/cli/alerts-command.js';
import { simpleRequestToCheckRequest } from '../../src/envoy/simple-request.js';
import { createLogger } from '../../src/observability/logger.js';
import { loadActiveVersion } from '../../src/operator/derived-version.js';
import { settingsOf } from '../../src/operator/mode.js';
import { runCli } from '../support/cli.js';
import { connectAuthz, type AuthzClient } from '../support/grpc-client.js';
import { eventually } from '../support/wait.js';
import { EXAMPLE_POLICIES } from '../support/policy-dir.js';
import { startTestStore, type TestStore } from '../support/s3-store.js';
import { makePki } from '../support/pki.js';
import { scrapeMetric } from '../support/admin-http.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

const SCHEMA = readFileSync(path.join(EXAMPLE_POLICIES, 'schema.cedarschema'), 'utf8');
const POLICIES = `@id("reads") permit(principal, action in Action::"read", resource);`;
// Tiny refill rates keep the counts independent of how fast the test runs: normal admits 50 in a burst, high-alert 1.
const BUNDLE_YAML = `mode: normal
rateLimits:
  - name: anonymous-per-ip
    match: { principalType: Anonymous }
    key: source.ip
    normal: { requestsPerSecond: 0.01, burst: 50 }
    high-alert: { requestsPerSecond: 0.002, burst: 1 }
`;
const TOKEN = 'alertmanager-test-token-0123456789';
const RULES = `rules:
  - alert: DDoSSuspected
    labels: { severity: critical }
    mode: high-alert
`;
// Long enough to see "still high-alert" right after the resolution, even on a loaded machine.
const HOLD_DOWN = '3s';

let s3: TestStore;
let server: TestServer;
let client: AuthzClient;
let receiver: RunningAlertReceiver;
let dir: string;
let ipCounter = 0;

function fileWith(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

const storeMode = async () => settingsOf((await loadActiveVersion(s3.store)).files).mode;
const activeVersion = async () => (await loadActiveVersion(s3.store)).pointer.version;

/** Anonymous GETs from one fresh address; the gRPC codes (0 allowed, 7 denied). */
async function anonymousBurst(n: number): Promise<{ allowed: number; limited: number }> {
  const ip = `198.51.100.${++ipCounter}`;
  let allowed = 0;
  let limited = 0;
  for (let i = 0; i < n; i++) {
    const res = await client.check(
      simpleRequestToCheckRequest({ method: 'GET', path: '/x', host: 'orders', sourceIp: ip }),
    );
    if (res.status.code === 0) allowed++;
    else if (res.denied_response?.status.code === 429) limited++;
  }
  return { allowed, limited };
}

function alert(status: 'firing' | 'resolved', fingerprint: string, labels: Record<string, string> = {}) {
  return {
    status,
    labels: { alertname: 'DDoSSuspected', severity: 'critical', instance: fingerprint, ...labels },
    annotations: { summary: 'request rate 40x baseline' },
    startsAt: '2026-11-30T18:00:00Z',
    endsAt: status === 'resolved' ? '2026-11-30T18:10:00Z' : '0001-01-01T00:00:00Z',
    generatorURL: 'http://prometheus:9090/graph',
    fingerprint,
  };
}

function payload(alerts: ReturnType<typeof alert>[]) {
  return {
    version: '4',
    groupKey: '{}:{alertname="DDoSSuspected"}',
    truncatedAlerts: 0,
    status: alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    receiver: 'authz-mode',
    groupLabels: { alertname: 'DDoSSuspected' },
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    alerts,
  };
}

/** The alerts receiver's JSON answer; which fields are present depends on the request. */
interface AlertsReply {
  error: string;
  mapped: number;
  unmapped: string[];
  result: string;
  wanted: string;
  firing: { fingerprint: string }[];
}

async function post(body: unknown, opts: { path?: string; token?: string | null; raw?: string; port?: number } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? TOKEN}`;
  const res = await fetch(`http://127.0.0.1:${opts.port ?? receiver.port}${opts.path ?? '/alerts'}`, {
    method: 'POST',
    headers,
    body: opts.raw ?? JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as AlertsReply };
}

const receiverMetric = (sample: string) => scrapeMetric(receiver.port, sample);

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'authz-alerts-'));
  s3 = await startTestStore();
  await s3.publish({ 'main.cedar': POLICIES, 'schema.cedarschema': SCHEMA, 'bundle.yaml': BUNDLE_YAML }, 'v1');
  server = await startTestServer({ ...s3.serverFlags });
  client = connectAuthz(server.grpcPort);
  const logger = createLogger({ level: 'info', destination: path.join(dir, 'alerts.log'), sync: true });
  receiver = await openAlertReceiver(
    {
      listen: '127.0.0.1:0',
      rules: fileWith('rules.yaml', RULES),
      'token-file': fileWith('token', `${TOKEN}\n`),
      'hold-down': HOLD_DOWN,
      's3-endpoint': s3.flags[1],
      bucket: s3.flags[3],
      bundle: s3.flags[5],
    },
    logger,
  );
});

afterAll(async () => {
  await receiver?.close();
  client?.close();
  await server?.close();
  await s3?.close();
});

describe('senders that may not switch the mode', () => {
  it('no token and a wrong token get 401, change nothing, and are counted', async () => {
    const before = await activeVersion();
    const none = await post(payload([alert('firing', 'a1')]), { token: null });
    const wrong = await post(payload([alert('firing', 'a1')]), { token: 'not-the-token-at-all' });
    expect([none.status, wrong.status]).toEqual([401, 401]);
    expect(await activeVersion()).toBe(before);
    expect(await receiverMetric('authz_alert_requests_total{result="unauthenticated"}')).toBe(2);
    expect(((await (await fetch(`http://127.0.0.1:${receiver.port}/status`)).json()) as AlertsReply).firing).toEqual(
      [],
    );
  });

  it('malformed JSON and a body that is not a webhook payload get 400 and change nothing', async () => {
    const before = await activeVersion();
    const bad = await post(undefined, { raw: '{"alerts": [' });
    expect(bad).toEqual({ status: 400, body: { error: 'body is not JSON' } });
    const wrongShape = await post({ status: 'firing', alerts: [{ labels: { alertname: 'DDoSSuspected' } }] });
    expect(wrongShape.status).toBe(400);
    expect(wrongShape.body.error).toMatch(/^not an Alertmanager webhook payload: alerts\.0\.status/);
    expect(await activeVersion()).toBe(before);
    expect(await receiverMetric('authz_alert_requests_total{result="malformed"}')).toBe(2);
  });

  it('alerts no rule maps (another name, or the right name at another severity) change nothing', async () => {
    const before = await activeVersion();
    const r = await post(
      payload([alert('firing', 'o1', { alertname: 'DiskFull' }), alert('firing', 'w1', { severity: 'warning' })]),
    );
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ mapped: 0, unmapped: ['DiskFull', 'DDoSSuspected'], result: 'nothing to change' });
    expect(await activeVersion()).toBe(before);
  });
});

describe('an incident, end to end', () => {
  it('normal mode: an anonymous address gets its normal burst', async () => {
    expect(await storeMode()).toBe('normal');
    expect(await anonymousBurst(5)).toEqual({ allowed: 5, limited: 0 });
  });

  it('DDoSSuspected firing puts the fleet in high-alert, and anonymous traffic is limited to the high-alert rate', async () => {
    const r = await post(payload([alert('firing', 'fp-ddos-1')]), { path: '/' });
    expect(r.status).toBe(200);
    expect(r.body.mapped).toBe(1);
    expect(r.body.result).toMatch(
      /^mode normal -> high-alert: published and activated shop v1--high-alert-\d{14} \(derived from v1\); rate limits now anonymous-per-ip 0\.002\/s burst 1; audit record s3:\/\//,
    );
    expect(await storeMode()).toBe('high-alert');
    await eventually(() => server.policySet.current?.settings.mode === 'high-alert', 15_000);
    expect(await anonymousBurst(4)).toEqual({ allowed: 1, limited: 3 });
  });

  it('the audit trail records the alert, its fingerprint and who sent it', async () => {
    const [latest] = await readHistory(s3.store, 1);
    expect(latest.record).toMatchObject({
      action: 'mode',
      from: 'v1',
      who: 'alertmanager (bearer token from 127.0.0.1)',
      why: 'alert DDoSSuspected firing',
      details: {
        mode: 'high-alert',
        previous_mode: 'normal',
        alert: 'DDoSSuspected',
        fingerprint: 'fp-ddos-1',
        receiver: 'authz-mode',
      },
    });
    const history = await runCli(['bundle', 'history', ...s3.flags]);
    expect(history.stdout).toMatch(
      /mode high-alert\s+v1\s+v1--high-alert-\d{14}\s+alertmanager \(bearer token from 127\.0\.0\.1\)\s+alert DDoSSuspected firing/,
    );
  });

  it('the same alert repeated (Alertmanager resends firing alerts) publishes nothing new', async () => {
    const before = await activeVersion();
    const r = await post(payload([alert('firing', 'fp-ddos-1')]));
    expect(r.status).toBe(200);
    expect(r.body.result).toMatch(/is already in high-alert mode; nothing changed$/);
    expect(await activeVersion()).toBe(before);
  });

  it('a grouped post where one instance resolves and another fires keeps high-alert', async () => {
    const before = await activeVersion();
    const r = await post(payload([alert('resolved', 'fp-ddos-1'), alert('firing', 'fp-ddos-2')]));
    expect(r.status).toBe(200);
    expect(r.body.firing.map((f: { fingerprint: string }) => f.fingerprint)).toEqual(['fp-ddos-2']);
    expect(await activeVersion()).toBe(before);
    expect(await storeMode()).toBe('high-alert');
  });

  it('when the last one resolves, high-alert holds for the hold-down, then normal returns and anonymous traffic gets its burst back', async () => {
    const r = await post(payload([alert('resolved', 'fp-ddos-2')]));
    expect(r.status).toBe(200);
    expect(r.body.result).toMatch(/^every mapped alert resolved; normal at \S+ unless one fires again \(hold-down\)$/);
    expect(r.body.wanted).toBe('normal');
    // Within the hold-down nothing has changed yet.
    expect(await storeMode()).toBe('high-alert');
    await eventually(async () => (await storeMode()) === 'normal', 20_000, 100);
    await eventually(() => server.policySet.current?.settings.mode === 'normal', 15_000);
    expect(await anonymousBurst(5)).toEqual({ allowed: 5, limited: 0 });
    const [latest] = await readHistory(s3.store, 1);
    expect(latest.record).toMatchObject({
      action: 'mode',
      why: 'alerts resolved (DDoSSuspected) and stayed resolved for the 3s hold-down',
      details: {
        mode: 'normal',
        previous_mode: 'high-alert',
        hold_down_ms: 3000,
        resolved: [
          { alert: 'DDoSSuspected', fingerprint: 'fp-ddos-1' },
          { alert: 'DDoSSuspected', fingerprint: 'fp-ddos-2' },
        ],
      },
    });
    expect(await receiverMetric('authz_alert_mode_switches_total{mode="high-alert"}')).toBe(1);
    expect(await receiverMetric('authz_alert_mode_switches_total{mode="normal"}')).toBe(1);
  });
});

describe('--dry-run and bad arguments', () => {
  it('--dry-run answers what it would do and publishes nothing', async () => {
    const dry = await openAlertReceiver(
      {
        listen: '127.0.0.1:0',
        rules: fileWith('rules.yaml', RULES),
        'token-file': fileWith('token', TOKEN),
        'dry-run': true,
        's3-endpoint': s3.flags[1],
        bucket: s3.flags[3],
        bundle: s3.flags[5],
      },
      createLogger({ level: 'silent' }),
    );
    try {
      const before = await activeVersion();
      const r = await post(payload([alert('firing', 'fp-dry')]), { port: dry.port });
      expect(r.status).toBe(200);
      expect(r.body.result).toMatch(
        /^dry run: would switch shop v1--normal-\d{14} from normal to high-alert \(alert DDoSSuspected firing\); nothing published$/,
      );
      expect(await activeVersion()).toBe(before);
    } finally {
      await dry.close();
    }
  });

  const store = () => ['--s3-endpoint', s3.flags[1], '--bucket', s3.flags[3], '--bundle', s3.flags[5]];
  const rows = [
    {
      name: 'no authentication configured',
      argv: ['--listen', '127.0.0.1:0', '--rules', 'RULES'],
      message:
        'needs --token-file FILE or mTLS (--tls-cert, --tls-key, --tls-client-ca): unauthenticated senders must not switch the mode',
    },
    {
      name: 'bad --listen',
      argv: ['--listen', 'nowhere', '--rules', 'RULES', '--token-file', 'TOKEN'],
      message: '--listen needs HOST:PORT (e.g. 0.0.0.0:9095), got "nowhere"',
    },
    {
      name: 'bad --hold-down',
      argv: ['--listen', '127.0.0.1:0', '--rules', 'RULES', '--token-file', 'TOKEN', '--hold-down', 'soon'],
      message: '--hold-down "soon" must be a duration such as 30s or 2m (at most 24h)',
    },
    {
      name: 'a rule asking for an unknown mode',
      argv: ['--listen', '127.0.0.1:0', '--rules', 'BADRULES', '--token-file', 'TOKEN'],
      message: 'rules file BADRULES: rules[0].mode: expected one of high-alert',
    },
    {
      name: 'a token too short to be a secret',
      argv: ['--listen', '127.0.0.1:0', '--rules', 'RULES', '--token-file', 'SHORT'],
      message: '--token-file SHORT: expected one token of at least 16 characters without spaces',
    },
  ];
  for (const row of rows) {
    it(`${row.name}: exit 2 with one line naming the flag`, async () => {
      const files: Record<string, string> = {
        RULES: fileWith('rules.yaml', RULES),
        BADRULES: fileWith('bad-rules.yaml', 'rules:\n  - alert: X\n    mode: panic\n'),
        TOKEN: fileWith('token', TOKEN),
        SHORT: fileWith('short', 'abc'),
      };
      const argv = row.argv.map((a) => files[a] ?? a);
      const r = await runCli(['alerts', 'serve', ...argv, ...store()]);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(row.message.replace(/BADRULES|SHORT/, (k) => files[k]));
    });
  }
});

describe('mTLS senders', () => {
  it("a client certificate the --tls-client-ca signed authenticates; another CA's or none gets 401", async () => {
    const pki = await makePki();
    const pem = (file: string) => readFileSync(file, 'utf8');
    const ca = { cert: pem(pki.caCert) };
    const client = { cert: pem(pki.clientCert), private: pem(pki.clientKey) };
    const stranger = { cert: pem(pki.strangerCert), private: pem(pki.strangerKey) };
    const mtls = await openAlertReceiver(
      {
        listen: '127.0.0.1:0',
        rules: fileWith('rules.yaml', RULES),
        'dry-run': true,
        'tls-cert': pki.serverCert,
        'tls-key': pki.serverKey,
        'tls-client-ca': pki.caCert,
        's3-endpoint': s3.flags[1],
        bucket: s3.flags[3],
        bundle: s3.flags[5],
      },
      createLogger({ level: 'silent' }),
    );
    const send = (cert?: { cert: string; private: string }) =>
      new Promise<{ status: number; body: AlertsReply }>((resolve, reject) => {
        const req = httpsRequest(
          {
            host: '127.0.0.1',
            port: mtls.port,
            path: '/alerts',
            method: 'POST',
            ca: ca.cert,
            servername: 'localhost',
            cert: cert?.cert,
            key: cert?.private,
            headers: { 'content-type': 'application/json' },
          },
          (res) => {
            let text = '';
            res.on('data', (c) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify(payload([alert('firing', 'fp-mtls')])));
      });
    try {
      const ok = await send(client);
      expect(ok.status).toBe(200);
      expect(ok.body.result).toMatch(/^dry run: would switch /);
      expect((await send(stranger)).status).toBe(401);
      expect((await send()).status).toBe(401);
    } finally {
      await mtls.close();
    }
  });
});
