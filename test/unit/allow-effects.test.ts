import { describe, expect, it } from 'vitest';
import { parseBundleSettings } from '../../src/bundle/bundle-settings.js';
import { compileBundle, compileBundleInChunks, type ActiveBundle } from '../../src/bundle/active-bundle.js';
import type { CedarValueJson } from '../../src/cedar/cedar-wasm.js';
import type { PrincipalRef } from '../../src/context/principal.js';
import type { Decision } from '../../src/decision.js';
import {
  parseHeaderNameList,
  parseHeaderTemplateList,
  parseQueryNameList,
  parseTemplate,
} from '../../src/effects/effect-syntax.js';
import {
  applyAllowEffects,
  renderTemplate,
  shapeEffects,
  type EffectScope,
  type EffectSource,
} from '../../src/pipeline/allow-effects.js';
import type { RequestModel } from '../../src/envoy/request-model.js';

const ALICE: PrincipalRef = {
  type: 'User',
  id: 'alice',
  attrs: {
    tenant: 'acme',
    admin: true,
    level: 3,
    groups: ['a'],
    org: { __entity: { type: 'Org', id: 'acme-org' } },
    address: { city: 'Oslo' },
  },
  parents: [],
};

const SCOPE: EffectScope = {
  principal: ALICE,
  staticAttrs: { region: 'eu', tenant: 'static-tenant' },
  context: {
    path: '/orders/5',
    query: { page: '2' },
    headers: { 'x-forwarded-user': 'bob', 'x-evil': 'a\r\nset-cookie: x' },
    source: { ip: { __extn: { fn: 'ip', arg: '10.0.0.1' } }, principal: 'spiffe://cluster.local/ns/shop/sa/frontend' },
  } as Record<string, CedarValueJson>,
  decisionId: 'd-1',
  version: 'v7',
};

describe('effect syntax', () => {
  const lists = [
    { name: 'names are trimmed and lower-cased', input: ' Cookie ,X-Debug', expected: ['cookie', 'x-debug'] },
    { name: 'a trailing * is a prefix', input: 'x-internal-*', expected: ['x-internal-*'] },
    { name: 'duplicates collapse', input: 'cookie, COOKIE', expected: ['cookie'] },
  ];
  for (const row of lists)
    it(`header list: ${row.name}`, () => expect(parseHeaderNameList(row.input, 'w')).toEqual(row.expected));

  it('query names keep their case and may have brackets', () => {
    expect(parseQueryNameList('access_token, API_KEY, ids[]', 'w')).toEqual(['access_token', 'API_KEY', 'ids[]']);
  });

  const templates = [
    { name: 'literal text', input: 'no-store', expected: [{ text: 'no-store' }] },
    { name: 'a placeholder', input: '{principal.id}', expected: [{ path: ['principal', 'id'] }] },
    {
      name: 'text around placeholders',
      input: 'u={principal.id}/{context.headers.x-tenant}!',
      expected: [
        { text: 'u=' },
        { path: ['principal', 'id'] },
        { text: '/' },
        { path: ['context', 'headers', 'x-tenant'] },
        { text: '!' },
      ],
    },
    { name: 'doubled braces are literal', input: '{{x}}', expected: [{ text: '{x}' }] },
    { name: 'spaces inside braces are ignored', input: '{ decision.id }', expected: [{ path: ['decision', 'id'] }] },
  ];
  for (const row of templates)
    it(`template: ${row.name}`, () => expect(parseTemplate(row.input, 'w')).toEqual(row.expected));

  it('pairs are separated by ; and ;; is a literal ;', () => {
    expect(
      parseHeaderTemplateList(
        "X-User-Id: {principal.id}; content-security-policy: default-src 'self';; img-src *;",
        'w',
        true,
      ),
    ).toEqual([
      { name: 'x-user-id', parts: [{ path: ['principal', 'id'] }] },
      { name: 'content-security-policy', parts: [{ text: "default-src 'self'; img-src *" }] },
    ]);
  });
});

describe('effects are validated when the set is compiled, with file and line', () => {
  const permit = 'permit (principal, action, resource);';
  const rows = [
    { name: 'an unclosed placeholder', annotation: '@set_headers("x-user-id: {principal.id")', error: /never closed/ },
    { name: 'a stray }', annotation: '@set_headers("x-a: a}b")', error: /without its \{/ },
    {
      name: 'an unknown placeholder root',
      annotation: '@set_headers("x-a: {request.path}")',
      error: /starts with principal\., context\. or decision\./,
    },
    { name: 'an empty placeholder', annotation: '@set_headers("x-a: {}")', error: /starts with principal/ },
    {
      name: 'a placeholder without a field',
      annotation: '@set_headers("x-a: {principal}")',
      error: /is not a placeholder/,
    },
    {
      name: 'an unknown decision field',
      annotation: '@set_headers("x-a: {decision.mode}")',
      error: /decision has only id and version/,
    },
    { name: 'a field of principal.id', annotation: '@set_headers("x-a: {principal.id.x}")', error: /has no fields/ },
    {
      name: 'a pair without a colon',
      annotation: '@set_headers("x-user-id {principal.id}")',
      error: /must look like "name: value"/,
    },
    { name: 'an empty value', annotation: '@set_headers("x-a: ")', error: /empty value/ },
    { name: 'a header set twice', annotation: '@set_headers("x-a: 1; X-A: 2")', error: /set twice/ },
    {
      name: 'a control character in a template',
      annotation: '@response_headers("x-a: a\\nb")',
      error: /control character/,
    },
    { name: ':path', annotation: '@set_headers(":path: /admin")', error: /pseudo-header/ },
    { name: 'host', annotation: '@set_headers("host: evil")', error: /cannot be changed/ },
    { name: 'a hop-by-hop header', annotation: '@strip_headers("connection")', error: /cannot be changed/ },
    { name: 'transfer-encoding', annotation: '@set_headers("transfer-encoding: chunked")', error: /cannot be changed/ },
    { name: 'our own marker', annotation: '@set_headers("x-authz-fail-open: true")', error: /cannot be changed/ },
    {
      name: 'content-length on the response',
      annotation: '@response_headers("content-length: 0")',
      error: /cannot be changed/,
    },
    { name: 'an empty list', annotation: '@strip_headers("")', error: /list is empty/ },
    { name: 'an empty item', annotation: '@strip_headers("cookie,,x-debug")', error: /empty item/ },
    { name: 'a bad header name', annotation: '@strip_headers("x debug")', error: /is not a header name/ },
    { name: 'a * inside a name', annotation: '@strip_headers("x-*-debug")', error: /\* may only end a name/ },
    { name: 'a bare *', annotation: '@strip_headers("*")', error: /needs a prefix/ },
    { name: 'a bad query name', annotation: '@strip_query("a=b")', error: /not a query parameter name/ },
    { name: 'no value', annotation: '@strip_query', error: /needs a value/ },
    {
      name: 'a misspelt annotation',
      annotation: '@strip_header("cookie")',
      error: /unknown annotation @strip_header; did you mean @strip_headers\?/,
    },
    {
      name: 'a misspelt annotation in another case',
      annotation: '@Set_Headers("x-a: b")',
      error: /did you mean @set_headers\?/,
    },
  ];
  for (const row of rows) {
    it(`refuses ${row.name}`, async () => {
      const text = `// header comment\n@id("ok")\n${permit}\n\n@id("bad")\n${row.annotation}\n${permit}\n`;
      const source = { version: 'v', policies: [{ name: 'sanitize.cedar', text }] };
      expect(() => compileBundle(source)).toThrow(row.error);
      expect(() => compileBundle(source)).toThrow(/^sanitize\.cedar:6 \(policy #1\): /);
      // The server's stepped compile refuses it the same way.
      await expect(compileBundleInChunks(source)).rejects.toThrow(/^sanitize\.cedar:6 \(policy #1\): /);
    });
  }

  it('refuses effects on a forbid', () => {
    expect(() =>
      compileBundle({
        version: 'v',
        policies: [{ name: 'f.cedar', text: '@strip_headers("cookie")\nforbid (principal, action, resource);' }],
      }),
    ).toThrow(/^f\.cedar:1 \(policy #0\): @strip_headers is on a forbid/);
  });

  it("passes the authors' own annotations", () => {
    const set = compileBundle({
      version: 'v',
      policies: [
        {
          name: 'p.cedar',
          text: '@id("p") @description("orders may read") @owner("team-a")\npermit (principal, action, resource);',
        },
      ],
    });
    expect(set.policySet.policies.get('p')!.annotations.effects).toBeUndefined();
  });

  it('keeps the parsed effects on the policy', () => {
    const set = compileBundle({
      version: 'v',
      policies: [
        {
          name: 'p.cedar',
          text: '@id("p") @strip_headers("cookie") @strip_query("access_token")\npermit (principal, action, resource);',
        },
      ],
    });
    expect(set.policySet.policies.get('p')!.annotations.effects).toEqual({
      stripHeaders: ['cookie'],
      setHeaders: [],
      stripQuery: ['access_token'],
      responseHeaders: [],
    });
  });
});

describe('bundle.yaml allowEffects', () => {
  it('reads rules, optionally by principal type', () => {
    const s = parseBundleSettings(
      'allowEffects:\n  - name: anon\n    principalType: Anonymous\n    stripHeaders: [x-internal-*]\n',
    );
    expect(s.allowEffects).toEqual([
      {
        name: 'anon',
        principalType: 'Anonymous',
        stripHeaders: ['x-internal-*'],
        setHeaders: {},
        stripQuery: [],
        responseHeaders: {},
      },
    ]);
  });

  const rows = [
    {
      name: 'a bad template, at its line',
      yaml: 'mode: normal\nallowEffects:\n  - setHeaders:\n      x-user: "{principal.id"\n',
      error: /bundle\.yaml:4:\d+: allowEffects\.0\.setHeaders: x-user: .*never closed/,
    },
    {
      name: 'a forbidden header',
      yaml: 'allowEffects:\n  - stripHeaders: [host]\n',
      error: /bundle\.yaml:2:\d+: allowEffects\.0\.stripHeaders: "host" cannot be changed/,
    },
    {
      name: 'a bad query name',
      yaml: 'allowEffects:\n  - stripQuery: ["a b"]\n',
      error: /allowEffects\.0\.stripQuery: "a b" is not a query parameter name/,
    },
    {
      name: 'an unknown key',
      yaml: 'allowEffects:\n  - stripHeader: [cookie]\n',
      error: /allowEffects\.0: Unrecognized key/,
    },
  ];
  for (const row of rows)
    it(`refuses ${row.name}`, () => expect(() => parseBundleSettings(row.yaml)).toThrow(row.error));
});

describe('templates render from the principal, the context and the decision', () => {
  const rows: { name: string; template: string; expected: string | { skipped: string } }[] = [
    { name: 'principal id', template: '{principal.id}', expected: 'alice' },
    { name: 'principal type', template: '{principal.type}', expected: 'User' },
    { name: 'a request attribute wins over entities.json', template: '{principal.tenant}', expected: 'acme' },
    { name: 'an entities.json attribute', template: '{principal.region}', expected: 'eu' },
    { name: 'booleans and longs', template: '{principal.admin}/{principal.level}', expected: 'true/3' },
    { name: 'an entity reference renders its id', template: '{principal.org}', expected: 'acme-org' },
    { name: 'a nested record field', template: '{principal.address.city}', expected: 'Oslo' },
    { name: 'an ip address renders its text', template: '{context.source.ip}', expected: '10.0.0.1' },
    { name: 'context fields', template: '{context.path}?page={context.query.page}', expected: '/orders/5?page=2' },
    { name: 'a request header', template: '{context.headers.x-forwarded-user}', expected: 'bob' },
    { name: 'the decision', template: '{decision.id}@{decision.version}', expected: 'd-1@v7' },
    { name: 'literal braces', template: '{{{principal.id}}}', expected: '{alice}' },
    {
      name: 'an absent attribute',
      template: 'x-{principal.email}',
      expected: { skipped: 'principal.email is absent' },
    },
    {
      name: 'an absent context field',
      template: '{context.headers.x-none}',
      expected: { skipped: 'context.headers.x-none is absent' },
    },
    { name: 'a set', template: '{principal.groups}', expected: { skipped: 'principal.groups is not a single value' } },
    {
      name: 'a record',
      template: '{principal.address}',
      expected: { skipped: 'principal.address is not a single value' },
    },
    {
      name: 'a value with a control character',
      template: '{context.headers.x-evil}',
      expected: { skipped: 'the value would contain a control character' },
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const r = renderTemplate(parseTemplate(row.template, 'w'), SCOPE);
      expect(r).toEqual(
        typeof row.expected === 'string'
          ? { ok: true, value: row.expected }
          : { ok: false, reason: row.expected.skipped },
      );
    });
  }

  it('a value too long for a header is left out', () => {
    const scope = { ...SCOPE, context: { path: 'x'.repeat(9000) } };
    expect(renderTemplate(parseTemplate('{context.path}', 'w'), scope)).toEqual({
      ok: false,
      reason: 'the value would be longer than 8192 characters',
    });
  });
});

function source(name: string, effects: Partial<EffectSource['effects']>): EffectSource {
  return {
    source: name,
    effects: { stripHeaders: [], setHeaders: [], stripQuery: [], responseHeaders: [], ...effects },
  };
}
const tpl = (list: string, response = false) => parseHeaderTemplateList(list, 'w', response);

describe('merging effects in policy order', () => {
  const headers = { cookie: 'c', 'x-internal-a': '1', 'x-internal-b': '2', 'x-user-id': 'forged' };
  const rows: { name: string; sources: EffectSource[]; expected: Record<string, unknown> }[] = [
    {
      name: 'removals are united, in order, without repeats',
      sources: [
        source('bundle:a', { stripHeaders: ['cookie'], stripQuery: ['token'] }),
        source('p1', { stripHeaders: ['cookie', 'x-debug'], stripQuery: ['token', 'api_key'] }),
      ],
      expected: {
        setHeaders: {},
        removeHeaders: ['cookie', 'x-debug'],
        removeQuery: ['token', 'api_key'],
        responseHeaders: {},
        report: { headers_removed: ['cookie', 'x-debug'], query_removed: ['token', 'api_key'] },
      },
    },
    {
      name: 'a wildcard removes the request headers it matches',
      sources: [source('bundle:anon', { stripHeaders: ['x-internal-*'] })],
      expected: { removeHeaders: ['x-internal-a', 'x-internal-b'] },
    },
    {
      name: 'the first source to set a header wins and the conflict is reported',
      sources: [
        source('bundle:caller', { setHeaders: tpl('x-user-id: {principal.id}') }),
        source('p1', { setHeaders: tpl('x-user-id: someone-else; x-tenant: {principal.tenant}') }),
      ],
      expected: {
        setHeaders: { 'x-user-id': 'alice', 'x-tenant': 'acme' },
        report: {
          headers_set: ['x-user-id', 'x-tenant'],
          conflicts: [{ header: 'x-user-id', kept: 'bundle:caller', dropped: 'p1' }],
        },
      },
    },
    {
      name: 'a header both removed and set is set (overwriting replaces the client value)',
      sources: [
        source('bundle:strip', { stripHeaders: ['x-user-id'] }),
        source('p1', { setHeaders: tpl('x-user-id: {principal.id}') }),
      ],
      expected: { setHeaders: { 'x-user-id': 'alice' }, removeHeaders: [] },
    },
    {
      name: 'a request header whose template fails is removed, never passed from the client',
      sources: [source('p1', { setHeaders: tpl('x-user-id: {principal.email}') })],
      expected: {
        setHeaders: {},
        removeHeaders: ['x-user-id'],
        report: {
          headers_removed: ['x-user-id'],
          skipped: [{ header: 'x-user-id', reason: 'principal.email is absent' }],
        },
      },
    },
    {
      name: 'response headers merge first-wins too; a failed one is only left out',
      sources: [
        source('p1', { responseHeaders: tpl('cache-control: no-store; x-who: {principal.email}', true) }),
        source('p2', { responseHeaders: tpl('cache-control: max-age=60', true) }),
      ],
      expected: {
        responseHeaders: { 'cache-control': 'no-store' },
        removeHeaders: [],
        report: {
          response_headers: ['cache-control'],
          conflicts: [{ header: 'cache-control', kept: 'p1', dropped: 'p2' }],
          skipped: [{ header: 'response x-who', reason: 'principal.email is absent' }],
        },
      },
    },
  ];
  for (const row of rows)
    it(row.name, () => expect(shapeEffects(row.sources, SCOPE, headers)).toMatchObject(row.expected));
});

describe('applyAllowEffects', () => {
  const text = [
    '@id("first") @set_headers("x-user-id: {principal.id}") @strip_headers("cookie") @strip_query("access_token") @response_headers("cache-control: no-store")',
    'permit (principal, action, resource == Service::"orders");',
    '@id("second") @set_headers("x-user-id: {principal.namespace}; x-sa: {principal.serviceAccount}")',
    'permit (principal, action, resource);',
  ].join('\n');
  const settings = parseBundleSettings(
    'allowEffects:\n  - name: anon\n    principalType: Anonymous\n    stripHeaders: [x-internal-*]\n  - name: all\n    responseHeaders: { x-decision: "{decision.id}" }\n',
  );
  const set: ActiveBundle = compileBundle({ version: 'v1', policies: [{ name: 'p.cedar', text }], settings });
  const input = { kind: 'http', headers: { 'x-internal-debug': '1', cookie: 'c' } } as unknown as RequestModel;
  const workload: PrincipalRef = {
    type: 'Workload',
    id: 'spiffe://cluster.local/ns/shop/sa/frontend',
    attrs: { namespace: 'shop', serviceAccount: 'frontend' },
    parents: [],
  };
  const allow = (policies: string[], reason: Decision['reason'] = 'allowed'): Decision => ({
    kind: 'allow',
    reason,
    status: 200,
    message: 'allowed',
    policies,
    headers: {},
    decisionId: 'd-9',
    version: 'v1',
  });

  it('merges bundle rules, then the determining permits in policy order (whatever order they are listed in)', () => {
    const { decision, report } = applyAllowEffects(allow(['second', 'first']), set, { input, principal: workload });
    expect(decision.headers).toEqual({ 'x-user-id': workload.id, 'x-sa': 'frontend' });
    expect(decision.headersToRemove).toEqual(['cookie']);
    expect(decision.queryParametersToRemove).toEqual(['access_token']);
    expect(decision.responseHeaders).toEqual({ 'x-decision': 'd-9', 'cache-control': 'no-store' });
    expect(report!.conflicts).toEqual([{ header: 'x-user-id', kept: 'first', dropped: 'second' }]);
  });

  it('applies a bundle rule only to its principal type', () => {
    const anon: PrincipalRef = { type: 'Anonymous', id: 'anonymous', attrs: {}, parents: [] };
    expect(applyAllowEffects(allow([]), set, { input, principal: anon }).decision.headersToRemove).toEqual([
      'x-internal-debug',
    ]);
    expect(applyAllowEffects(allow([]), set, { input, principal: workload }).decision.headersToRemove).toBeUndefined();
  });

  it('a dry-run allow gets the bundle rules, not the effects of policies that did not permit', () => {
    const { decision } = applyAllowEffects(allow(['first'], 'policy_forbid'), set, { input, principal: workload });
    expect(decision.headers).toEqual({});
    expect(decision.responseHeaders).toEqual({ 'x-decision': 'd-9' });
  });

  it('keeps what the allow already carried (a forged marker removed)', () => {
    const a = { ...allow(['first']), headersToRemove: ['x-authz-fail-open'] };
    expect(applyAllowEffects(a, set, { input, principal: workload }).decision.headersToRemove).toEqual([
      'x-authz-fail-open',
      'cookie',
    ]);
  });

  it('leaves denies and network checks alone', () => {
    const deny: Decision = { ...allow(['first']), kind: 'deny', reason: 'policy_forbid', status: 403 };
    expect(applyAllowEffects(deny, set, { input, principal: workload })).toEqual({ decision: deny });
    const network = { ...input, kind: 'network' } as RequestModel;
    expect(applyAllowEffects(allow(['first']), set, { input: network, principal: workload })).toEqual({
      decision: allow(['first']),
    });
  });
});
