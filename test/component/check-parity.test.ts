/**
 * `authz check` and the server give the same answer for the same request:
 * one table of requests, each sent to a real server over grpc-js and decided
 * by `authz check` (locally, from the same files and the same flags, and
 * with --server), comparing what Envoy would be told: allowed or not, HTTP
 * status, reason code, outcome, and the headers that change what a client or
 * the upstream sees.
 *
 * Fail modes are driven by a missed deadline (--decision-timeout with a path
 * that takes far longer to decide): no policy file can make Cedar's
 * evaluation itself fail (an erroring policy is skipped, as Cedar does), and
 * a deadline goes through the same fail-mode answer.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpStatusNumber } from '../../src/cli/remote-check.js';
import { simpleRequestToCheckRequest, type SimpleRequest } from '../../src/envoy/simple-request.js';
import type { WireCheckResponse } from '../../src/envoy/wire-types.js';
import { DEFAULT_LOCKDOWN_METHODS, lockdownFile, lockdownPolicyText } from '../../src/operator/lockdown.js';
import { runAuthz, runCli } from '../support/cli.js';
import { connectAuthz, type AuthzClient } from '../support/grpc-client.js';
import { policyDir, removeDir } from '../support/policy-dir.js';
import { FRONTEND } from '../support/requests.js';
import { startTestServer, type TestServer } from '../support/start-server.js';
import { AUDIENCE, ISSUER, signingKey, token } from './context-harness.js';

const POLICIES = `
@id("reads") permit(principal, action in Action::"read", resource);
@id("no-delete") @status("405") @message("orders cannot be deleted")
forbid(principal, action == Action::"DELETE", resource);
@id("sign-in-first") @status("401") @message("sign in to see your account")
forbid(principal is Anonymous, action, resource) when { context.path == "/account" };
`;
// A tiny refill rate: the burst alone decides, however slowly the test runs.
const BUNDLE_YAML = `rateLimits:
  - name: per-client
    match: { pathPrefix: /limited }
    key: source.ip
    normal: { requestsPerSecond: 0.001, burst: 3 }
`;
// 200 policies with a \`like\` that scans the whole path: a 100 KB path takes well over 100 ms to decide.
const SLOW_POLICIES = Array.from(
  { length: 200 },
  (_, i) => `@id("scan-${i}") forbid(principal, action, resource) when { context.path like "*a*a*a*b${i}" };`,
).join('\n');
const SLOW_PATH = '/x/' + 'a'.repeat(100_000);
const DECISION_TIMEOUT = '30ms';

/** What Envoy is told, as far as a client or the upstream can tell. */
interface Answer {
  allowed: boolean;
  status: number;
  reason: string;
  outcome: string;
  headers: Record<string, string>;
}
const SHOWN_HEADERS = ['www-authenticate', 'retry-after', 'x-authz-fail-open', 'x-authz-dry-run-decision'];

function answerOf(res: WireCheckResponse): Answer {
  const meta = res.dynamic_metadata?.fields ?? {};
  const allowed = res.status.code === 0;
  const headers: Record<string, string> = {};
  for (const h of (allowed ? res.ok_response?.headers : res.denied_response?.headers) ?? []) {
    if (SHOWN_HEADERS.includes(h.header.key)) headers[h.header.key] = h.header.value;
  }
  return {
    allowed,
    status: allowed ? 200 : httpStatusNumber(res.denied_response?.status.code as number | string | undefined)!,
    reason: meta.reason?.stringValue ?? '',
    outcome: meta.decision?.stringValue ?? '',
    headers,
  };
}

interface Row {
  name: string;
  request: SimpleRequest;
  /** Identical requests (from the same client) before this one. */
  prior?: number;
  /** The server with --decision-timeout and the slow policies. */
  slow?: boolean;
  expected: Partial<Answer>;
}

let validToken = '';
const ROWS: Row[] = [
  {
    name: 'allow',
    request: { method: 'GET', path: '/orders/1', host: 'orders', principal: FRONTEND },
    expected: { allowed: true, status: 200, reason: 'allowed', outcome: 'allow' },
  },
  {
    name: 'deny by a forbid with its status',
    request: { method: 'DELETE', path: '/orders/1', host: 'orders', principal: FRONTEND },
    expected: { allowed: false, status: 405, reason: 'policy_forbid', outcome: 'deny' },
  },
  {
    name: 'deny with no permit',
    request: { method: 'POST', path: '/orders', host: 'orders', principal: FRONTEND },
    expected: { allowed: false, status: 403, reason: 'no_permit' },
  },
  {
    name: 'a bad bearer token: 401 with a challenge',
    request: { method: 'GET', path: '/orders/1', host: 'orders', headers: { authorization: 'Bearer not-a-token' } },
    expected: { allowed: false, status: 401, reason: 'unauthenticated' },
  },
  {
    name: "a policy's 401 gets the server's challenge",
    request: { method: 'GET', path: '/account', host: 'orders' },
    expected: {
      allowed: false,
      status: 401,
      reason: 'policy_forbid',
      headers: { 'www-authenticate': 'Bearer realm="authz"' },
    },
  },
  {
    name: 'a verified user',
    request: { method: 'GET', path: '/account', host: 'orders', headers: { authorization: 'Bearer (valid)' } },
    expected: { allowed: true, reason: 'allowed' },
  },
  {
    name: 'within the burst',
    request: { method: 'GET', path: '/limited/a', host: 'orders' },
    prior: 2,
    expected: { allowed: true, reason: 'allowed' },
  },
  {
    name: 'rate limited after the burst: 429',
    request: { method: 'GET', path: '/limited/a', host: 'orders' },
    prior: 3,
    expected: { allowed: false, status: 429, reason: 'rate_limited', outcome: 'deny' },
  },
  {
    name: 'dry-run route: a deny answered as an allow',
    request: {
      method: 'DELETE',
      path: '/orders/1',
      host: 'orders',
      principal: FRONTEND,
      contextExtensions: { enforcement: 'dry-run' },
    },
    expected: {
      allowed: true,
      status: 200,
      reason: 'policy_forbid',
      outcome: 'dry_run_allow',
      headers: { 'x-authz-dry-run-decision': 'deny' },
    },
  },
  {
    name: 'lockdown: writes to payments answer 503 with Retry-After',
    request: { method: 'POST', path: '/payments', host: 'payments', principal: FRONTEND },
    expected: { allowed: false, status: 503, reason: 'policy_forbid', headers: { 'retry-after': '300' } },
  },
  {
    name: 'fail-closed route on a missed deadline',
    request: { method: 'GET', path: SLOW_PATH, host: 'orders', principal: FRONTEND },
    slow: true,
    expected: { allowed: false, status: 503, reason: 'fail_closed', outcome: 'deny' },
  },
  {
    name: 'fail-open route on a missed deadline',
    request: {
      method: 'GET',
      path: SLOW_PATH,
      host: 'orders',
      principal: FRONTEND,
      contextExtensions: { fail_mode: 'open' },
    },
    slow: true,
    expected: {
      allowed: true,
      status: 200,
      reason: 'deadline_exceeded',
      outcome: 'fail_open',
      headers: { 'x-authz-fail-open': 'true' },
    },
  },
];

let dir: string;
let slowDir: string;
let server: TestServer;
let slowServer: TestServer;
let client: AuthzClient;
let slowClient: AuthzClient;
let jwks: string;

beforeAll(async () => {
  const key = await signingKey('k1');
  validToken = await token(key, { sub: 'alice' });
  const lockdown = {
    service: 'payments',
    methods: [...DEFAULT_LOCKDOWN_METHODS],
    message: 'payments is in maintenance',
    retryAfterSeconds: 300,
    by: 'test',
    at: '2026-11-30T00:00:00Z',
    reason: null,
  };
  dir = policyDir({ 'main.cedar': POLICIES, 'bundle.yaml': BUNDLE_YAML });
  // As `authz lockdown on --service payments` writes it.
  mkdirSync(path.join(dir, path.dirname(lockdownFile('payments'))));
  writeFileSync(path.join(dir, lockdownFile('payments')), lockdownPolicyText(lockdown));
  jwks = path.join(dir, 'jwks.json');
  writeFileSync(jwks, JSON.stringify({ keys: [key.publicJwk] }));
  slowDir = policyDir({ 'main.cedar': POLICIES, 'slow.cedar': SLOW_POLICIES });
  [server, slowServer] = await Promise.all([
    startTestServer({ policies: dir, jwtIssuer: ISSUER, jwtAudience: [AUDIENCE], jwks }),
    // No decision cache: every slow request must be evaluated (a cached answer would rightly be fast).
    // Cedar's wasm build: the JS engine's `like` decides even the long path in well under a millisecond.
    startTestServer({ policies: slowDir, decisionTimeout: DECISION_TIMEOUT, decisionCacheEntries: 0, engine: 'wasm' }),
  ]);
  client = connectAuthz(server.grpcPort);
  slowClient = connectAuthz(slowServer.grpcPort);
});
afterAll(async () => {
  client?.close();
  slowClient?.close();
  await Promise.all([server?.close(), slowServer?.close()]);
  if (dir) removeDir(dir);
  if (slowDir) removeDir(slowDir);
});

/** The row's request from one client: each way of asking has its own source address, so rate limit buckets are not shared. */
function requestOf(row: Row, client: number): SimpleRequest {
  const headers = { ...row.request.headers };
  if (headers.authorization === 'Bearer (valid)') headers.authorization = `Bearer ${validToken}`;
  return { ...row.request, headers, sourceIp: `10.0.${client}.${ROWS.indexOf(row) + 1}` };
}

/** `authz check` flags for a request, as a user types them. */
function requestFlags(r: SimpleRequest): string[] {
  const out = ['--method', r.method ?? 'GET', '--path', r.path ?? '/', '--host', r.host!, '--source-ip', r.sourceIp!];
  if (r.principal) out.push('--principal', r.principal);
  for (const [k, v] of Object.entries(r.headers ?? {})) out.push('--header', `${k}: ${v}`);
  for (const [k, v] of Object.entries(r.contextExtensions ?? {})) out.push('--context-extension', `${k}=${v}`);
  return out;
}

/** The same files and settings the row's server was started with. */
const serverFlags = (row: Row): string[] =>
  row.slow
    ? ['--policies', slowDir, '--decision-timeout', DECISION_TIMEOUT, '--engine', 'wasm']
    : ['--policies', dir, '--jwt-issuer', ISSUER, '--jwt-audience', AUDIENCE, '--jwks', jwks];

const firstLine = (text: string): string => text.split('\n')[0];

describe('authz check answers as the server does', () => {
  it.each(ROWS)('$name', async (row) => {
    const c = row.slow ? slowClient : client;

    // The server, over grpc-js, as Envoy asks it.
    const viaGrpc = simpleRequestToCheckRequest(requestOf(row, 1));
    for (let i = 0; i < (row.prior ?? 0); i++) await c.check(viaGrpc);
    const served = answerOf(await c.check(viaGrpc));
    expect(served).toMatchObject(row.expected);

    // `authz check` deciding locally from the same files and flags.
    const local = requestFlags(requestOf(row, 2));
    const prior = row.prior ? ['--prior-requests', String(row.prior)] : [];
    const json = await runCli(['check', ...serverFlags(row), ...local, ...prior, '--json']);
    expect(json.stderr).toBe('');
    expect(answerOf(JSON.parse(json.stdout).checkResponse)).toEqual(served);
    const text = await runCli(['check', ...serverFlags(row), ...local, ...prior]);
    expect(text.code).toBe(served.allowed ? 0 : 1);

    // `authz check --server` asking the running server: the same first line as the local check.
    const remote = requestOf(row, 3);
    for (let i = 0; i < (row.prior ?? 0); i++) await c.check(simpleRequestToCheckRequest(remote));
    const port = row.slow ? slowServer.grpcPort : server.grpcPort;
    const asked = await runCli(['check', '--server', `127.0.0.1:${port}`, ...requestFlags(remote)]);
    expect(asked.code).toBe(text.code);
    expect(firstLine(asked.stdout)).toBe(firstLine(text.stdout));
  });
});

describe('authz check says what would change the answer', () => {
  it('names the rate limit and when it would deny, and the route fail mode', async () => {
    const row = ROWS.find((r) => r.name === 'within the burst')!;
    const r = await runCli(['check', ...serverFlags(row), ...requestFlags(requestOf(row, 4))]);
    expect(r.stdout).toContain(
      '\nrate limit: "per-client" (0.001/s, burst 3, per source.ip, normal mode) would deny after 3 requests at once\n',
    );
    expect(r.stdout).toContain(
      '\nroute:      fail mode closed: an evaluation error or a missed deadline would be denied (fail_closed, HTTP 503)\n',
    );
    const limited = await runCli([
      'check',
      ...serverFlags(row),
      ...requestFlags(requestOf(row, 4)),
      '--prior-requests',
      '3',
    ]);
    expect(limited.stdout).toContain(
      'would deny after 3 requests at once; it denies this one, after 3 earlier (--prior-requests)\n',
    );
  });

  it('--fail-mode open is the route default a context extension overrides', async () => {
    const row = ROWS.find((r) => r.name === 'allow')!;
    const open = await runCli([
      'check',
      ...serverFlags(row),
      ...requestFlags(requestOf(row, 4)),
      '--fail-mode',
      'open',
    ]);
    expect(open.stdout).toContain(
      '\nroute:      fail mode open: an evaluation error or a missed deadline would be allowed (x-authz-fail-open: true)\n',
    );
    const closed = await runCli([
      'check',
      ...serverFlags(row),
      ...requestFlags(requestOf(row, 4)),
      '--fail-mode',
      'open',
      '--context-extension',
      'fail_mode=closed',
    ]);
    expect(closed.stdout).toContain('\nroute:      fail mode closed:');
  });

  it('a bad --prior-requests or --fail-mode stops with a line naming it', async () => {
    const flags = [...serverFlags(ROWS[0]), ...requestFlags(requestOf(ROWS[0], 4))];
    const bad = await runAuthz(['check', ...flags, '--prior-requests', 'lots']);
    expect(bad).toMatchObject({
      code: 2,
      stderr:
        'authz check: --prior-requests lots: expected a whole number from 0 to 10000\nRun "authz check --help" for its options.\n',
    });
    const mode = await runAuthz(['check', ...flags, '--fail-mode', 'ajar']);
    expect(mode).toMatchObject({
      code: 2,
      stderr:
        'authz check: invalid configuration:\n  failMode: Invalid option: expected one of "closed"|"open" (from --fail-mode)\n',
    });
  });
});
