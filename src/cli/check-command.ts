import { readFileSync } from 'node:fs';
import { compilePolicyDirectory } from '../bundle/format/compile-policy-directory.js';
import type { CompiledPolicySet } from '../cedar/compile.js';
import { RESOURCE_TYPE } from '../pipeline/cedar-request.js';
import { UNKNOWN_SERVICE_ID } from '../cedar/slicing.js';
import { didYouMean } from '../text/did-you-mean.js';
import { formatNoteLine, jsonErrorNote } from '../text/source-position.js';
import type { CedarValueJson } from '../cedar/cedar-wasm.js';
import type { EffectReport } from '../pipeline/allow-effects.js';
import type { WireCheckResponse } from '../envoy/wire-types.js';
import { simpleRequestToCheckRequest, type SimpleRequest } from '../envoy/simple-request.js';
import { loadConfig } from '../config/load-config.js';
import { DEFAULT_POLICIES_DIR } from '../config/schema.js';
import { requestEnricherFromConfig } from '../wiring/context-from-config.js';
import { fixedLoad } from '../context/server-load.js';
import { decisionDeadline, epochNowMs } from '../enforcement/deadline.js';
import { decideCheck, type CheckOutcome, type PipelineDeps } from '../pipeline/decide-check.js';
import { bodyLimitsFromConfig, safetyOptionsFromConfig } from '../wiring/pipeline-settings.js';
import { respond, routeDefaultsFor, routeOf } from '../pipeline/respond.js';
import { RateLimiter } from '../ratelimit/rate-limiter.js';
import { enforcementLines, rateLimitLines } from './check-explanation.js';
import type { Command } from './command-framework.js';
import { UsageError } from './command-framework.js';
import { applyEngineOption, ENGINE_OPTION } from './engine-option.js';
import type { RemoteTls } from './remote-check.js';
import { CONTEXT_OPTIONS } from './context-options.js';
import { flagsToConfig } from './serve-command.js';

/** context.load is a percentage of event-loop utilisation. */
const MAX_LOAD = 100;
/** --prior-requests: enough to empty any sensible burst, few enough that Cedar deciding them all stays quick. */
const MAX_PRIOR_REQUESTS = 10_000;

/** Options of `check` that are not server config keys. */
const CHECK_ONLY = [
  'policies',
  'request',
  'method',
  'path',
  'host',
  'principal',
  'destination-principal',
  'source-ip',
  'header',
  'context-extension',
  'time',
  'json',
  'load',
  'prior-requests',
  'config',
  'server',
  'tls-ca',
  'tls-cert',
  'tls-key',
  'help',
];

/** The server's fields of the whole context (not the projection Cedar got, which holds only what policies read). */
function contextSummary(context: Record<string, CedarValueJson>): string {
  const source = context.source as Record<string, CedarValueJson> | undefined;
  const lists = (source?.lists as string[] | undefined) ?? [];
  return `hour=${context.hour} weekday=${context.weekday} load=${context.load} risk=${context.risk ?? '(none)'} source.lists=[${lists.join(', ')}]`;
}

function pairs(list: unknown, sep: string, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of (list as string[] | undefined) ?? []) {
    const i = item.indexOf(sep);
    if (i <= 0) throw new UsageError(`${what} "${item}" must look like NAME${sep}VALUE`);
    out[item.slice(0, i).trim()] = item.slice(i + 1).trim();
  }
  return out;
}

export function requestFromFlags(values: Record<string, unknown>): SimpleRequest {
  if (values.request) {
    const file = values.request as string;
    const text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
    try {
      return JSON.parse(text) as SimpleRequest;
    } catch (err) {
      throw new UsageError(
        `--request ${formatNoteLine(jsonErrorNote(file === '-' ? '(stdin)' : file, text, err as Error))}`,
      );
    }
  }
  return {
    method: (values.method as string | undefined) ?? 'GET',
    path: (values.path as string | undefined) ?? '/',
    host: values.host as string | undefined,
    principal: values.principal as string | undefined,
    destinationPrincipal: values['destination-principal'] as string | undefined,
    sourceIp: values['source-ip'] as string | undefined,
    headers: pairs(values.header, ':', '--header'),
    contextExtensions: pairs(values['context-extension'], '=', '--context-extension'),
    time: values.time as string | undefined,
  };
}

export const checkCommand: Command = {
  path: ['check'],
  summary: 'decide one request against a policy directory, as the server would, and explain it',
  usage:
    'check [--policies DIR] (--request FILE | --method M --path P --host H [--principal SPIFFE] [--destination-principal SPIFFE] [--header "k: v"]...)',
  options: {
    policies: { type: 'string', description: `Policy directory (default ${DEFAULT_POLICIES_DIR})`, valueName: 'DIR' },
    ...ENGINE_OPTION,
    request: {
      type: 'string',
      description: 'JSON request (short form or an Envoy CheckRequest); - for stdin',
      valueName: 'FILE',
    },
    method: { type: 'string', description: 'HTTP method (default GET)', valueName: 'METHOD' },
    path: { type: 'string', description: 'Path with optional query (default /)', valueName: 'PATH' },
    host: { type: 'string', description: 'Host / :authority', valueName: 'HOST' },
    principal: {
      type: 'string',
      description: 'Source principal, e.g. spiffe://cluster.local/ns/shop/sa/frontend',
      valueName: 'ID',
    },
    'destination-principal': {
      type: 'string',
      description: "Destination principal: the called workload's identity, as its sidecar reports it",
      valueName: 'ID',
    },
    'source-ip': { type: 'string', description: 'Source IP address', valueName: 'IP' },
    header: { type: 'string', multiple: true, description: 'Request header "name: value"', valueName: 'HEADER' },
    'context-extension': {
      type: 'string',
      multiple: true,
      description: 'context_extensions entry name=value',
      valueName: 'KV',
    },
    time: { type: 'string', description: 'Request time (ISO-8601; default now)', valueName: 'TIME' },
    load: { type: 'string', description: 'context.load to assume, 0-100 (default 0)', valueName: 'N' },
    'prior-requests': {
      type: 'string',
      description:
        'Rate limits: assume N identical requests came just before, at the same instant, to fresh buckets (default 0)',
      valueName: 'N',
    },
    'fail-mode': {
      type: 'string',
      description: "closed|open: the server's --fail-mode to assume (a route's context_extensions fail_mode wins)",
      valueName: 'MODE',
    },
    'dry-run': {
      type: 'boolean',
      description: "Assume the server's --dry-run (a route's context_extensions enforcement wins)",
    },
    'decision-timeout': {
      type: 'string',
      description: "The server's --decision-timeout to assume, e.g. 50ms",
      valueName: 'DURATION',
    },
    config: {
      type: 'string',
      description: 'YAML config file, read as `serve` reads it (JWT issuers, risk, trusted hops)',
      valueName: 'FILE',
    },
    ...CONTEXT_OPTIONS,
    json: { type: 'boolean', description: 'Print one JSON document instead of text' },
    server: {
      type: 'string',
      description: 'Ask a running server over gRPC instead of deciding locally',
      valueName: 'HOST:PORT',
    },
    'tls-ca': {
      type: 'string',
      description: 'With --server: connect over TLS, trusting this CA for the server certificate',
      valueName: 'FILE',
    },
    'tls-cert': {
      type: 'string',
      description: 'With --server: client certificate for mTLS (with --tls-key)',
      valueName: 'FILE',
    },
    'tls-key': { type: 'string', description: 'With --server: private key of --tls-cert', valueName: 'FILE' },
  },
  details: [
    "The request goes through the server's pipeline: identity, bundle.yaml rate limits, Cedar, the deadline, then the",
    "route's fail mode and dry-run, so the answer is the one a server with the same flags would give. The output says",
    'which rate limits the request counts against ("would deny after N requests at once"), and what the route\'s fail',
    'mode does with an evaluation error or a missed deadline. Rate limit buckets start full: --prior-requests N says',
    'how many identical requests to count first.',
    '',
    'Exit code: 0 when allowed (also a dry-run or fail-open allow), 1 when denied, 2 on a usage or policy error.',
  ].join('\n'),
  async run(values) {
    if (values.server) return checkAgainstServer(values.server as string, values);
    for (const flag of ['tls-ca', 'tls-cert', 'tls-key'])
      if (values[flag] !== undefined) throw new UsageError(`--${flag} only applies with --server`);
    const loadText = values.load as string | undefined;
    if (loadText !== undefined && !(/^\d{1,3}$/.test(loadText) && Number(loadText) <= MAX_LOAD))
      throw new UsageError(
        `--load ${loadText}: expected a whole number from 0 to ${MAX_LOAD} (context.load is a percentage)`,
      );
    const priorText = values['prior-requests'] as string | undefined;
    if (priorText !== undefined && !(/^\d{1,5}$/.test(priorText) && Number(priorText) <= MAX_PRIOR_REQUESTS))
      throw new UsageError(`--prior-requests ${priorText}: expected a whole number from 0 to ${MAX_PRIOR_REQUESTS}`);
    const config = loadConfig({ flags: flagsToConfig(values, CHECK_ONLY), file: values.config as string | undefined });
    applyEngineOption(values);
    const safety = safetyOptionsFromConfig(config);
    const set = await compilePolicyDirectory((values.policies as string | undefined) ?? DEFAULT_POLICIES_DIR);
    const checkRequest = simpleRequestToCheckRequest(requestFromFlags(values));
    const enricher = await requestEnricherFromConfig(config, fixedLoad(Number(loadText ?? 0)));
    await enricher.start();
    // One server's fresh buckets; the earlier requests all land at this instant, so none refills in between.
    const limiter = new RateLimiter();
    const instant = epochNowMs();
    const deps: PipelineDeps = {
      enricher,
      limiter,
      rateLimitNowMs: () => instant,
      inputOptions: { bodyLimits: bodyLimitsFromConfig(config) },
      decisionTimeoutMs: safety.decisionTimeoutMs,
    };
    const prior = Number(priorText ?? 0);
    let outcome: CheckOutcome;
    try {
      for (let i = 0; i < prior; i++) await decideCheck(checkRequest, set, deps);
      // As the server does, the deadline starts when the check does (after compiling, which the server does at load).
      outcome = await decideCheck(checkRequest, set, deps, decisionDeadline(epochNowMs(), safety.decisionTimeoutMs));
    } finally {
      enricher.stop();
    }
    if (outcome.internalError !== undefined)
      process.stderr.write(`authz check: internal error while deciding: ${(outcome.internalError as Error).message}\n`);
    const route = routeOf(outcome, routeDefaultsFor(safety, set));
    const { enforced, response, effects: report } = respond(outcome, route, set);
    const d = enforced.answer;
    if (values.json) {
      process.stdout.write(
        JSON.stringify(
          {
            decision: d,
            outcome: enforced.outcome,
            rulesDecision: outcome.decision,
            route: {
              failMode: route.failMode,
              dryRun: route.dryRun,
              ...(route.warning ? { warning: route.warning } : {}),
            },
            rateLimits:
              outcome.principal && outcome.input
                ? limiter.rulesMatching(set.settings, outcome.input, outcome.principal)
                : [],
            cedarRequest: outcome.cedarRequest,
            policyErrors: outcome.engine?.errors ?? [],
            effects: report ?? {},
            checkResponse: response,
          },
          null,
          2,
        ) + '\n',
      );
    } else {
      const auth = outcome;
      const c = auth.cedarRequest;
      const lines = [
        `decision:   ${d.kind.toUpperCase()} (${d.reason}, HTTP ${d.status})`,
        `message:    ${d.message}`,
        `policies:   ${d.policies.length ? d.policies.join(', ') : '(none)'}`,
        `version:    ${d.version}`,
      ];
      if (c) {
        lines.push(
          `principal:  ${c.principal.type}::"${c.principal.id}"`,
          `action:     Action::"${c.action.id}"`,
          `resource:   ${c.resource.type}::"${c.resource.id}"`,
          `context:    ${contextSummary(auth.context ?? c.context)}`,
        );
      } else if (auth.target) {
        lines.push(
          `principal:  ${auth.target.principal}`,
          `action:     Action::"${auth.target.action}"`,
          `resource:   Service::"${auth.target.resource}"`,
        );
      } else if (auth.principal) {
        // Stopped before Cedar (a rate limit, a deadline): who the limits counted.
        lines.push(`principal:  ${auth.principal.type}::"${auth.principal.id}"`);
      }
      if (auth.mismatch)
        lines.push(
          `host:       "${auth.mismatch.host}" names Service::"${auth.mismatch.hostService}"; the destination ${auth.mismatch.identity} is Service::"${auth.mismatch.service}"`,
        );
      if (c) {
        const note = unknownServiceNote(set.policySet, c.resource.id);
        if (note) lines.push(`note:       ${note}`);
      }
      for (const e of auth.engine?.errors ?? []) lines.push(`error in ${e.policyId}: ${e.message}`);
      lines.push(...enforcementLines(outcome, enforced, route));
      lines.push(...rateLimitLines(outcome, limiter, set, prior));
      lines.push(...effectLines(response, report));
      lines.push('envoy response:', JSON.stringify(response, null, 2));
      process.stdout.write(lines.join('\n') + '\n');
    }
    return d.kind === 'allow' ? 0 : 1;
  },
};

/** What an allow does to the request and response, read from the answer Envoy gets (names; values are in the response below). */
export function effectLines(response: WireCheckResponse, report?: EffectReport): string[] {
  const ok = response.ok_response;
  if (!ok) return [];
  const rows: [string, string[] | undefined][] = [
    ['request headers set', ok.headers?.map((h) => h.header.key)],
    ['request headers removed', ok.headers_to_remove],
    ['query parameters removed', ok.query_parameters_to_remove],
    ['response headers added', ok.response_headers_to_add?.map((h) => h.header.key)],
  ];
  const lines: string[] = [];
  for (const [what, names] of rows) if (names?.length) lines.push(`${what}: ${names.join(', ')}`);
  for (const c of report?.conflicts ?? [])
    lines.push(`conflict: ${c.header} set by ${c.kept} and ${c.dropped}; ${c.kept} wins`);
  for (const s of report?.skipped ?? []) lines.push(`left out: ${s.header} (${s.reason})`);
  return lines.map((l, i) => (i === 0 ? `effects:    ${l}` : `            ${l}`));
}

/**
 * A service no policy or entity names is decided by the catch-all policies
 * only, which is right for a new service and wrong for a typo (`--host ordres`):
 * say so, with the closest known name.
 */
export function unknownServiceNote(set: CompiledPolicySet, service: string): string | undefined {
  const known = new Set(set.slices.knownPairs(RESOURCE_TYPE).map(([, r]) => r.id));
  if (known.has(service)) return undefined;
  known.delete(UNKNOWN_SERVICE_ID);
  return `no policy or entity names ${RESOURCE_TYPE}::"${service}"${didYouMean(service, known)}`;
}

async function checkAgainstServer(address: string, values: Record<string, unknown>): Promise<number> {
  const tls: RemoteTls = {
    ca: values['tls-ca'] as string | undefined,
    cert: values['tls-cert'] as string | undefined,
    key: values['tls-key'] as string | undefined,
  };
  const request = simpleRequestToCheckRequest(requestFromFlags(values));
  // grpc-js only when asking a server: other commands start faster without it.
  const { askServer, outcomeNote, readCheckResponse, remoteCredentials } = await import('./remote-check.js');
  remoteCredentials(tls); // a bad TLS flag is a usage error, not a failed call
  let response;
  try {
    response = await askServer(address, request, tls);
  } catch (err) {
    process.stderr.write(`authz check: ${(err as Error).message}\n`);
    return 2;
  }
  const a = readCheckResponse(response);
  if (values.json) {
    process.stdout.write(JSON.stringify({ answer: a, checkResponse: response }, null, 2) + '\n');
  } else {
    process.stdout.write(
      [
        `decision:   ${a.allowed ? 'ALLOW' : 'DENY'} (${a.reason ? `${a.reason}, ` : ''}HTTP ${a.httpStatus})`,
        `message:    ${a.message}`,
        `policies:   ${a.policies.length ? a.policies.join(', ') : '(none)'}`,
        `version:    ${a.version}`,
        `decision id: ${a.decisionId}`,
        ...outcomeNote(a),
        `server:     ${address}${tls.cert ? ' (mTLS)' : tls.ca ? ' (TLS)' : ''}`,
        ...effectLines(response),
        'envoy response:',
        JSON.stringify(response, null, 2),
      ].join('\n') + '\n',
    );
  }
  return a.allowed ? 0 : 1;
}
