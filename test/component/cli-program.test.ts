/**
 * The `authz` program as a user meets it: version, help, typos, refusals and
 * errors that point at the file and line, each as one clear answer with a
 * non-zero exit and no stack trace.
 */
import { spawn } from 'node:child_process';
import { writeFileSync, readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { camelToEnv } from '../../src/config/load-config.js';
import { configSchema } from '../../src/config/schema.js';
import { runAuthz } from '../support/cli.js';
import { copyExamplePolicies, removeDir } from '../support/policy-dir.js';

const STACK_LINE = /^\s+at .+\(?.*:\d+:\d+\)?$/m;
const dirs: string[] = [];
const examples = (): string => {
  const d = copyExamplePolicies();
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach(removeDir));

describe('the command', () => {
  it('package.json names the authz executable, built with a shebang', () => {
    const pkg = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../package.json'), 'utf8'));
    expect(pkg.bin).toEqual({ authz: 'dist/cli/main.js' });
    expect(
      readFileSync(path.resolve(import.meta.dirname, '../../src/cli/main.ts'), 'utf8').startsWith(
        '#!/usr/bin/env node\n',
      ),
    ).toBe(true);
  });

  it('--version names authz, Cedar and Node', async () => {
    const r = await runAuthz(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^authz \d+\.\d+\.\d+ \(cedar-envoy-authz\)\ncedar 4\.\d+\.\d+\nnode \d+\.\d+\.\d+\n$/);
    expect((await runAuthz(['version'])).stdout).toBe(r.stdout);
  });

  const helps: { name: string; argv: string[]; expected: RegExp }[] = [
    { name: 'authz --help', argv: ['--help'], expected: /^authz: Envoy\/Istio external authorization/ },
    { name: 'authz help serve', argv: ['help', 'serve'], expected: /^authz serve: run the ext_authz/ },
    {
      name: 'authz help bundle build',
      argv: ['help', 'bundle', 'build'],
      expected: /^authz bundle build: validate a policy directory/,
    },
    { name: 'authz bundle --help', argv: ['bundle', '--help'], expected: /^authz bundle: one of\n {2}bundle build/ },
    { name: 'authz help bundle', argv: ['help', 'bundle'], expected: /^authz bundle: one of\n/ },
    { name: 'authz check --help', argv: ['check', '--help'], expected: /^authz check: decide one request/ },
  ];
  it.each(helps)('$name prints help and exits 0', async ({ argv, expected }) => {
    const r = await runAuthz(argv);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(expected);
  });

  const refusals: { name: string; argv: string[]; stderr: string }[] = [
    { name: 'a misspelt command', argv: ['serv'], stderr: 'authz: unknown command "serv"; did you mean "serve"?\n' },
    {
      name: 'a command far from any',
      argv: ['frobnicate'],
      stderr: 'authz: unknown command "frobnicate"; run "authz --help" for the list\n',
    },
    {
      name: 'a misspelt subcommand',
      argv: ['bundle', 'biuld'],
      stderr: 'authz bundle: unknown command "biuld"; did you mean "build"?\n',
    },
    {
      name: 'a group without its command',
      argv: ['lockdown'],
      stderr: 'authz lockdown needs a command; one of on, off, status\n',
    },
    {
      name: 'a misspelt option',
      argv: ['serve', '--polices', 'x'],
      stderr:
        'authz serve: unknown option --polices; did you mean --policies?\nRun "authz serve --help" for its options.\n',
    },
    {
      name: 'an option without its value',
      argv: ['check', '--policies'],
      stderr: 'authz check: --policies needs a value\nRun "authz check --help" for its options.\n',
    },
    {
      name: 'an extra argument',
      argv: ['validate', 'policies', 'extra'],
      stderr: 'authz validate: unexpected argument "extra" (takes DIR)\nRun "authz validate --help" for its options.\n',
    },
    {
      name: 'an argument to a command that takes none',
      argv: ['serve', 'now'],
      stderr: 'authz serve: unexpected argument "now" (it takes none)\nRun "authz serve --help" for its options.\n',
    },
  ];
  it.each(refusals)('refuses $name with one line and a suggestion', async ({ argv, stderr }) => {
    const r = await runAuthz(argv);
    expect(r).toMatchObject({ code: 2, stdout: '', stderr });
  });

  it('serve --help lists every setting under its flag, environment name and YAML key', async () => {
    const help = (await runAuthz(['serve', '--help'])).stdout;
    for (const key of Object.keys(configSchema.shape)) {
      const named = help.includes(`| ${camelToEnv(key)} | ${key}`) || help.includes(`(YAML only) ${key}\n`);
      expect(named, key).toBe(true);
    }
    expect(help).toContain('--poll-interval | AUTHZ_POLL_INTERVAL | pollInterval');
  });
});

describe('typos in a check', () => {
  it('a service no policy names is pointed out, with the closest known one', async () => {
    const r = await runAuthz([
      'check',
      '--host',
      'ordres',
      '--path',
      '/orders/1',
      '--principal',
      'spiffe://cluster.local/ns/shop/sa/frontend',
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('\nnote:       no policy or entity names Service::"ordres"; did you mean "orders"?\n');
    const known = await runAuthz([
      'check',
      '--host',
      'orders',
      '--path',
      '/orders/1',
      '--principal',
      'spiffe://cluster.local/ns/shop/sa/frontend',
    ]);
    expect(known.stdout).not.toContain('note:');
  });

  it('--load is a percentage', async () => {
    const r = await runAuthz(['check', '--load', '200']);
    expect(r).toMatchObject({
      code: 2,
      stderr:
        'authz check: --load 200: expected a whole number from 0 to 100 (context.load is a percentage)\nRun "authz check --help" for its options.\n',
    });
  });
});

describe('errors that point at the line', () => {
  it('a Cedar syntax error: file:line:col, the line and a caret', async () => {
    const dir = examples();
    writeFileSync(path.join(dir, 'orders.cedar'), '// orders\npermit (principal, action, resource)\nwhen { @ };\n');
    const r = await runAuthz(['validate', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `INVALID ${dir}: Cedar parse error:\n${dir}/orders.cedar:3:8: unexpected token \`@\`; expected \`!\`, \`(\`, \`-\`, \`[\`, \`{\`, \`}\`, \`false\`, identifier, \`if\`, number, \`?principal\`, \`?resource\`, string literal, or \`true\`\n` +
        '    3 | when { @ };\n' +
        '      |        ^\n',
    );
  });

  it('a schema error: in its file at its line, each distinct error once', async () => {
    const dir = examples();
    const text = readFileSync(path.join(dir, 'orders.cedar'), 'utf8').replace(
      'principal == Workload::',
      'principal == Wrkload::',
    );
    writeFileSync(path.join(dir, 'orders.cedar'), text);
    const line = text.split('\n').findIndex((l) => l.includes('Wrkload')) + 1;
    const r = await runAuthz(['check', '--policies', dir]);
    expect(r.code).toBe(2);
    const lines = r.stderr.split('\n');
    expect(lines[0]).toBe('authz check: policies do not validate against schema.cedarschema:');
    expect(lines[1]).toBe(
      `${dir}/orders.cedar:${line}:16: for policy \`orders-frontend-access\`, unrecognized entity type \`Wrkload\` (did you mean \`Workload\`?)`,
    );
    expect(lines[3]).toMatch(/^ +\| {16}\^{7}$/);
    expect(r.stderr.match(/Wrkload`/g)).toHaveLength(1);
    expect(r.stderr).not.toMatch(STACK_LINE);
  });

  it('entities.json syntax errors name the line and column', async () => {
    const dir = examples();
    writeFileSync(
      path.join(dir, 'entities.json'),
      '[\n  { "uid": { "type": "Group", "id": "admins" },, "attrs": {}, "parents": [] }\n]\n',
    );
    const r = await runAuthz(['validate', dir]);
    expect(r.stderr.split('\n')[1]).toBe(
      `${dir}/entities.json:2:48: not valid JSON: Expected double-quoted property name`,
    );
  });

  it('an entity Cedar refuses is pointed at by its id', async () => {
    const dir = examples();
    const text = readFileSync(path.join(dir, 'entities.json'), 'utf8').replace('"type": "Group"', '"type": "Grop"');
    writeFileSync(path.join(dir, 'entities.json'), text);
    const line = text.split('\n').findIndex((l) => l.includes('"Grop"')) + 1;
    const r = await runAuthz(['validate', dir]);
    expect(r.stderr.split('\n')[1]).toMatch(
      new RegExp(`^${dir}/entities.json:${line}:\\d+: .*Grop::"admins".*not declared in the schema`),
    );
  });

  it('bundle.yaml mistakes name the line and column', async () => {
    const dir = examples();
    writeFileSync(
      path.join(dir, 'bundle.yaml'),
      'mode: normal\nrateLimits:\n  - name: x\n    key: source.ip\n    normal: { requestsPerSecond: 0, burst: 2 }\n',
    );
    const r = await runAuthz(['validate', dir]);
    expect(r.stderr.split('\n')[1]).toBe(
      `${dir}/bundle.yaml:5:34: rateLimits.0.normal.requestsPerSecond: Too small: expected number to be >0`,
    );
    writeFileSync(path.join(dir, 'bundle.yaml'), 'mode: normal\nrateLimits: [\n');
    expect((await runAuthz(['validate', dir])).stderr).toMatch(
      new RegExp(`^INVALID .*: bundle.yaml is not valid YAML:\\n${dir}/bundle.yaml:3:1: not valid YAML: `),
    );
  });

  const missing = path.join(tmpdir(), 'authz-no-such-dir');
  const userErrors: { name: string; argv: string[]; stderr: string }[] = [
    {
      name: 'check on a missing directory',
      argv: ['check', '--policies', missing],
      stderr: `authz check: ${missing}: no such file or directory\n`,
    },
    {
      name: 'bundle build of a missing directory',
      argv: ['bundle', 'build', missing, '-o', '/tmp/x.tar.gz'],
      stderr: `authz bundle build: ${missing}: no such file or directory\n`,
    },
    {
      name: 'a bad config value',
      argv: ['check', '--trusted-hops', 'many'],
      stderr:
        'authz check: invalid configuration:\n  trustedHops: Invalid input: expected number, received NaN (from --trusted-hops)\n',
    },
  ];
  it.each(userErrors)('$name: one line, exit 2, no stack trace', async ({ argv, stderr }) => {
    const r = await runAuthz(argv);
    expect(r).toMatchObject({ code: 2, stderr });
  });

  it('--debug adds the stack trace', async () => {
    const r = await runAuthz(['check', '--debug', '--policies', missing]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(STACK_LINE);
  });

  it('a second bundle keygen refuses to overwrite, in one line', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'authz-keys-'));
    dirs.push(dir);
    expect((await runAuthz(['bundle', 'keygen', `${dir}/k`])).code).toBe(0);
    const again = await runAuthz(['bundle', 'keygen', `${dir}/k`]);
    expect(again).toMatchObject({
      code: 1,
      stderr: `authz bundle keygen: ${dir}/k.key: already exists; it is never overwritten\n`,
    });
  });
});

describe('quiet output', () => {
  it('store commands print no AWS SDK Node-version warning', async () => {
    const warnings: string[] = [];
    const spy = vi
      .spyOn(process, 'emitWarning')
      .mockImplementation(((w: string | Error) => void warnings.push(String(w))) as typeof process.emitWarning);
    const saved = { ...process.env };
    delete process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', AWS_MAX_ATTEMPTS: '1' });
    try {
      // Nothing listens on port 1: the command fails fast, and only its own one line is printed.
      const r = await runAuthz([
        'bundle',
        'list',
        '--bucket',
        'b',
        '--bundle',
        'x',
        '--s3-endpoint',
        'http://127.0.0.1:1',
      ]);
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(warnings.filter((w) => /AWS SDK|NodeVersionSupport/.test(w))).toEqual([]);
    } finally {
      spy.mockRestore();
      process.env = saved;
    }
  });
});

describe('the executable, in its own process', () => {
  // The source entry point under tsx, so the test never runs a stale build; tsx's start-up is slow on a busy machine.
  const main = `--import tsx ${path.resolve(import.meta.dirname, '../../src/cli/main.ts')}`;
  const SPAWNED_TEST_TIMEOUT_MS = 120_000;
  it(
    'ends quietly when its reader goes away (EPIPE)',
    async () => {
      // `true` exits without reading: authz's write finds the pipe closed (as with `| head -1` on long output).
      const r = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const child = spawn('bash', ['-c', `set -o pipefail; node ${main} serve --help | true`]);
        let stderr = '';
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        child.on('close', (status) => resolve({ status, stderr }));
      });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    },
    SPAWNED_TEST_TIMEOUT_MS,
  );
});
