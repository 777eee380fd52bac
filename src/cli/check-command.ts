import { readFileSync } from 'node:fs';
import { authorizeRequest } from '../authorize.js';
import { compilePolicyDirectory } from '../bundle/load-directory.js';
import type { CompiledPolicySet } from '../cedar/compile.js';
import { RESOURCE_TYPE } from '../cedar/cedar-request.js';
import { UNKNOWN_SERVICE_ID } from '../cedar/slicing.js';
import { didYouMean } from '../text/did-you-mean.js';
import { formatNoteLine, jsonErrorNote } from '../text/source-position.js';
import type { CedarValueJson } from '../cedar/cedar-wasm.js';
import { applyAllowEffects, type EffectReport } from '../envoy/allow-effects.js';
import { decisionToCheckResponse } from '../envoy/check-response.js';
import type { WireCheckResponse } from '../envoy/wire-types.js';
import { simpleRequestToCheckRequest, type SimpleRequest } from '../envoy/simple-request.js';
import { loadConfig } from '../config/load-config.js';
import { DEFAULT_POLICIES_DIR } from '../config/schema.js';
import { requestEnricherFromConfig } from '../context/context-from-config.js';
import { fixedLoad } from '../context/load.js';
import type { Command } from './command.js';
import { UsageError } from './command.js';
import { applyEngineOption, ENGINE_OPTION } from './engine-option.js';
import type { RemoteTls } from './remote-check.js';
import { CONTEXT_OPTIONS } from './context-options.js';
import { flagsToConfig } from './serve-command.js';

/** context.load is a percentage of event-loop utilisation. */
const MAX_LOAD = 100;

/** Options of `check` that are not server config keys. */
const CHECK_ONLY = ['policies', 'request', 'method', 'path', 'host', 'principal', 'destination-principal', 'source-ip', 'header', 'context-extension', 'time', 'json', 'load', 'config', 'server', 'tls-ca', 'tls-cert', 'tls-key', 'help'];

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
      throw new UsageError(`--request ${formatNoteLine(jsonErrorNote(file === '-' ? '(stdin)' : file, text, err as Error))}`);
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
  usage: 'check [--policies DIR] (--request FILE | --method M --path P --host H [--principal SPIFFE] [--destination-principal SPIFFE] [--header "k: v"]...)',
  options: {
    policies: { type: 'string', description: `Policy directory (default ${DEFAULT_POLICIES_DIR})`, valueName: 'DIR' },
    ...ENGINE_OPTION,
    request: { type: 'string', description: 'JSON request (short form or an Envoy CheckRequest); - for stdin', valueName: 'FILE' },
    method: { type: 'string', description: 'HTTP method (default GET)', valueName: 'METHOD' },
    path: { type: 'string', description: 'Path with optional query (default /)', valueName: 'PATH' },
    host: { type: 'string', description: 'Host / :authority', valueName: 'HOST' },
    principal: { type: 'string', description: 'Source principal, e.g. spiffe://cluster.local/ns/shop/sa/frontend', valueName: 'ID' },
    'destination-principal': { type: 'string', description: "Destination principal: the called workload's identity, as its sidecar reports it", valueName: 'ID' },
    'source-ip': { type: 'string', description: 'Source IP address', valueName: 'IP' },
    header: { type: 'string', multiple: true, description: 'Request header "name: value"', valueName: 'HEADER' },
    'context-extension': { type: 'string', multiple: true, description: 'context_extensions entry name=value', valueName: 'KV' },
    time: { type: 'string', description: 'Request time (ISO-8601; default now)', valueName: 'TIME' },
    load: { type: 'string', description: 'context.load to assume, 0-100 (default 0)', valueName: 'N' },
    config: { type: 'string', description: 'YAML config file, read as `serve` reads it (JWT issuers, risk, trusted hops)', valueName: 'FILE' },
    ...CONTEXT_OPTIONS,
    json: { type: 'boolean', description: 'Print one JSON document instead of text' },
    server: { type: 'string', description: 'Ask a running server over gRPC instead of deciding locally', valueName: 'HOST:PORT' },
    'tls-ca': { type: 'string', description: 'With --server: connect over TLS, trusting this CA for the server certificate', valueName: 'FILE' },
    'tls-cert': { type: 'string', description: 'With --server: client certificate for mTLS (with --tls-key)', valueName: 'FILE' },
    'tls-key': { type: 'string', description: 'With --server: private key of --tls-cert', valueName: 'FILE' },
  },
  details: 'Exit code: 0 when allowed, 1 when denied, 2 on a usage or policy error.',
  async run(values) {
    if (values.server) return checkAgainstServer(values.server as string, values);
    for (const flag of ['tls-ca', 'tls-cert', 'tls-key']) if (values[flag] !== undefined) throw new UsageError(`--${flag} only applies with --server`);
    const loadText = values.load as string | undefined;
    if (loadText !== undefined && !(/^\d{1,3}$/.test(loadText) && Number(loadText) <= MAX_LOAD)) throw new UsageError(`--load ${loadText}: expected a whole number from 0 to ${MAX_LOAD} (context.load is a percentage)`);
    const config = loadConfig({ flags: flagsToConfig(values, CHECK_ONLY), file: values.config as string | undefined });
    applyEngineOption(values);
    const set = await compilePolicyDirectory((values.policies as string | undefined) ?? DEFAULT_POLICIES_DIR);
    const checkRequest = simpleRequestToCheckRequest(requestFromFlags(values));
    const enricher = await requestEnricherFromConfig(config, fixedLoad(Number(loadText ?? 0)));
    await enricher.start();
    let auth;
    try {
      auth = await authorizeRequest(checkRequest, set, enricher);
    } finally {
      enricher.stop();
    }
    // The server's response stage: effects after the decision, from this request's principal and context.
    const { decision: d, report } = applyAllowEffects(auth.decision, set, auth);
    const p = auth.principal;
    const response = decisionToCheckResponse(d, { principal: p ? { type: p.type, id: p.id } : undefined, mode: set.settings.mode });
    if (values.json) {
      process.stdout.write(
        JSON.stringify({ decision: d, cedarRequest: auth.cedarRequest, policyErrors: auth.engine?.errors ?? [], effects: report ?? {}, checkResponse: response }, null, 2) + '\n',
      );
    } else {
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
        lines.push(`principal:  ${auth.target.principal}`, `action:     Action::"${auth.target.action}"`, `resource:   Service::"${auth.target.resource}"`);
      }
      if (auth.mismatch) lines.push(`host:       "${auth.mismatch.host}" names Service::"${auth.mismatch.hostService}"; the destination ${auth.mismatch.identity} is Service::"${auth.mismatch.service}"`);
      if (c) {
        const note = unknownServiceNote(set, c.resource.id);
        if (note) lines.push(`note:       ${note}`);
      }
      for (const e of auth.engine?.errors ?? []) lines.push(`error in ${e.policyId}: ${e.message}`);
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
  for (const [what, names] of rows) if (names && names.length) lines.push(`${what}: ${names.join(', ')}`);
  for (const c of report?.conflicts ?? []) lines.push(`conflict: ${c.header} set by ${c.kept} and ${c.dropped}; ${c.kept} wins`);
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
  const tls: RemoteTls = { ca: values['tls-ca'] as string | undefined, cert: values['tls-cert'] as string | undefined, key: values['tls-key'] as string | undefined };
  const request = simpleRequestToCheckRequest(requestFromFlags(values));
  // grpc-js only when asking a server: other commands start faster without it.
  const { askServer, readCheckResponse, remoteCredentials } = await import('./remote-check.js');
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
        `server:     ${address}${tls.cert ? ' (mTLS)' : tls.ca ? ' (TLS)' : ''}`,
        ...effectLines(response),
        'envoy response:',
        JSON.stringify(response, null, 2),
      ].join('\n') + '\n',
    );
  }
  return a.allowed ? 0 : 1;
}
